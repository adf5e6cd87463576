/* libcurl, loaded with dlopen when the first HTTP request is made (an LLM
 * call, a monitor's webhook), not by the dynamic linker at start-up:
 * libcurl and the 28 libraries it pulls in (TLS, Kerberos, LDAP, SSH...)
 * were most of what `ice run` cost before it read its file, and a
 * workflow without HTTP never needs them. Nor must their absence stop
 * such a workflow: without libcurl at run time, only HTTP fails, with a
 * message that says why.
 *
 * Include this instead of <curl/curl.h>: it keeps curl's types and
 * constants and turns each curl_* call used here into a call through the
 * table that ice__curl_load fills. */
#ifndef ICE_CURL_DL_H
#define ICE_CURL_DL_H

/* curl's type-checking macros would wrap the calls we redirect. */
#ifndef CURL_DISABLE_TYPECHECK
#define CURL_DISABLE_TYPECHECK 1
#endif
#include <curl/curl.h>

typedef struct {
  CURLcode (*global_init)(long);
  curl_version_info_data *(*version_info)(CURLversion);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  CURLcode (*easy_perform)(CURL *);
  void (*easy_cleanup)(CURL *);
  const char *(*easy_strerror)(CURLcode);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
  CURLMcode (*multi_add_handle)(CURLM *, CURL *);
  CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
  CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
  CURLMcode (*multi_assign)(CURLM *, curl_socket_t, void *);
  CURLMsg *(*multi_info_read)(CURLM *, int *);
  CURLMcode (*multi_cleanup)(CURLM *);
  CURLU *(*url)(void);
  CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
  CURLUcode (*url_get)(const CURLU *, CURLUPart, char **, unsigned int);
  void (*url_cleanup)(CURLU *);
  void (*free)(void *);
  time_t (*getdate)(const char *, const time_t *);
} ice__curl_api_t;

extern ice__curl_api_t ice__curl;

/* Loads libcurl (once per process; thread-safe) and calls
 * curl_global_init. 0, or -1: ice__curl_error() says why. The library
 * is $ICE_LIBCURL when set (a test hook: a path that does not exist
 * plays a machine without libcurl), else libcurl.so.4. */
int ice__curl_load(void);

/* Why ice__curl_load failed ("HTTP is not available: ..."), or NULL. */
const char *ice__curl_error(void);

/* curl.h defines these three as macros of its own (to itself). */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init ice__curl.global_init
#define curl_version_info ice__curl.version_info
#define curl_easy_init ice__curl.easy_init
#define curl_easy_setopt ice__curl.easy_setopt
#define curl_easy_getinfo ice__curl.easy_getinfo
#define curl_easy_perform ice__curl.easy_perform
#define curl_easy_cleanup ice__curl.easy_cleanup
#define curl_easy_strerror ice__curl.easy_strerror
#define curl_slist_append ice__curl.slist_append
#define curl_slist_free_all ice__curl.slist_free_all
#define curl_multi_init ice__curl.multi_init
#define curl_multi_setopt ice__curl.multi_setopt
#define curl_multi_add_handle ice__curl.multi_add_handle
#define curl_multi_remove_handle ice__curl.multi_remove_handle
#define curl_multi_socket_action ice__curl.multi_socket_action
#define curl_multi_assign ice__curl.multi_assign
#define curl_multi_info_read ice__curl.multi_info_read
#define curl_multi_cleanup ice__curl.multi_cleanup
#define curl_url ice__curl.url
#define curl_url_set ice__curl.url_set
#define curl_url_get ice__curl.url_get
#define curl_url_cleanup ice__curl.url_cleanup
#define curl_free ice__curl.free
#define curl_getdate ice__curl.getdate

#endif
