/* The baseline for the engine's cost per LLM call: bare libcurl multi, no
 * ice and no libuv. Sends N POSTs of one JSON body to URL, at most C at a
 * time, on a plain curl_multi_poll loop, with the same transfer options as
 * src/httpc.c (HTTP/1.1, keep-alive, no Expect), and prints the elapsed
 * seconds. Exits 1 when any answer is not a 2xx.
 *
 *   bench_curl_multi URL N C [BODY]
 *   e.g. bench_curl_multi http://127.0.0.1:PORT/v1/chat/completions 2000 50
 *   (against tests/support/chat_server.py) */
#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *k_body =
    "{\"model\":\"bench\",\"messages\":[{\"role\":\"user\",\"content\":"
    "\"Say hello\"}]}";

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Answers are read and thrown away, as the engine would after parsing. */
static size_t discard(char *p, size_t size, size_t n, void *data) {
  (void)p;
  (void)data;
  return size * n;
}

static CURL *new_request(const char *url, const char *body,
                         struct curl_slist *hdrs) {
  CURL *h = curl_easy_init();

  if (h == NULL)
    return NULL;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body); /* lives as long as main */
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
  return h;
}

int main(int argc, char **argv) {
  const char *url, *body;
  long n, c, started = 0, done = 0, failed = 0;
  struct curl_slist *hdrs = NULL;
  CURLM *m;
  double t0;
  int running = 0;

  if (argc < 4 || argc > 5) {
    fprintf(stderr, "usage: %s URL N C [BODY]\n", argv[0]);
    return 2;
  }
  url = argv[1];
  n = strtol(argv[2], NULL, 10);
  c = strtol(argv[3], NULL, 10);
  body = argc == 5 ? argv[4] : k_body;
  if (n <= 0 || c <= 0) {
    fprintf(stderr, "N and C must be positive\n");
    return 2;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
    return 1;
  hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
  hdrs = curl_slist_append(hdrs, "Authorization: Bearer bench");
  hdrs = curl_slist_append(hdrs, "Expect:");
  m = curl_multi_init();
  if (hdrs == NULL || m == NULL)
    return 1;
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
  t0 = now_s();
  while (done < n) {
    CURLMsg *msg;
    int left;

    while (started < n && started - done < c) {
      CURL *h = new_request(url, body, hdrs);

      if (h == NULL || curl_multi_add_handle(m, h) != CURLM_OK)
        return 1;
      started++;
    }
    curl_multi_perform(m, &running);
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      long status = 0;

      if (msg->msg != CURLMSG_DONE)
        continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      if (msg->data.result != CURLE_OK || status < 200 || status > 299) {
        if (failed++ == 0)
          fprintf(stderr, "request failed: %s, HTTP %ld\n",
                  curl_easy_strerror(msg->data.result), status);
      }
      curl_multi_remove_handle(m, msg->easy_handle);
      curl_easy_cleanup(msg->easy_handle);
      done++;
    }
    if (done < n && running > 0)
      curl_multi_poll(m, NULL, 0, 1000, NULL);
  }
  printf("%.6f\n", now_s() - t0);
  if (failed > 0)
    fprintf(stderr, "%ld of %ld requests failed\n", failed, n);
  curl_multi_cleanup(m);
  curl_slist_free_all(hdrs);
  curl_global_cleanup();
  return failed > 0 ? 1 : 0;
}
