/* The event bus: subscribers filter by exact type or by prefix ("node.").
 * Delivery is synchronous, on the loop thread, in subscription order.
 * Unsubscribing while events are being delivered only marks the entry;
 * it is unlinked once the outermost delivery returns (as redis does for
 * timers deleted from their own callback). Events are built by their
 * emitters only when ice__bus_wants() says someone listens. */
#include "engine.h"
#include "states.h"

#include <string.h>

static int matches(const struct ice_sub_s *s, const char *type) {
  if (s->dead)
    return 0;
  if (s->filter == NULL)
    return 1;
  if (s->prefix)
    return strncmp(type, s->filter, s->flen) == 0;
  return strcmp(type, s->filter) == 0;
}

/* Which event types someone listens to, so that an emitter asks one bit,
 * not every subscriber, before building an event. */
static void update_wants(ice_engine_t *e) {
  uint32_t w = 0;

  for (int t = 0; t < ICE__EV_COUNT; t++) {
    for (const struct ice_sub_s *s = e->subs; s != NULL; s = s->next) {
      if (matches(s, ice__event_name(t))) {
        w |= UINT32_C(1) << t;
        break;
      }
    }
  }
  e->wants = w;
}

int ice_subscribe(ice_engine_t *e, const char *filter, ice_event_cb cb,
                  void *data, ice_sub_t **out) {
  struct ice_sub_s *s, **tail;

  if (e == NULL || cb == NULL)
    return ICE_EINVAL;
  s = ice__calloc(1, sizeof(*s));
  if (s == NULL)
    return ICE_ENOMEM;
  if (filter != NULL && filter[0] != '\0') {
    s->filter = ice__strdup(filter);
    if (s->filter == NULL) {
      ice__free(s);
      return ICE_ENOMEM;
    }
    s->flen = strlen(filter);
    s->prefix = filter[s->flen - 1] == '.';
  }
  s->cb = cb;
  s->data = data;
  /* Append so delivery follows subscription order. */
  for (tail = &e->subs; *tail != NULL; tail = &(*tail)->next)
    ;
  *tail = s;
  e->nsubs++;
  update_wants(e);
  if (out != NULL)
    *out = s;
  return 0;
}

static void sweep(ice_engine_t *e) {
  struct ice_sub_s **p = &e->subs;

  while (*p != NULL) {
    struct ice_sub_s *s = *p;
    if (s->dead) {
      *p = s->next;
      ice__free(s->filter);
      ice__free(s);
    } else {
      p = &s->next;
    }
  }
}

void ice_unsubscribe(ice_engine_t *e, ice_sub_t *sub) {
  if (e == NULL || sub == NULL || sub->dead)
    return;
  sub->dead = 1;
  e->nsubs--;
  update_wants(e);
  if (e->delivering == 0)
    sweep(e);
}

int ice__bus_wants_type(const ice_engine_t *e, int type) {
  return (e->wants >> type) & 1u;
}

int ice__bus_wants(const ice_engine_t *e, const char *type) {
  if (e->nsubs == 0)
    return 0;
  for (const struct ice_sub_s *s = e->subs; s != NULL; s = s->next) {
    if (matches(s, type))
      return 1;
  }
  return 0;
}

void ice__bus_emit(ice_engine_t *e, const char *type, json_t *ev) {
  e->delivering++;
  /* Subscriptions added during delivery are appended and may see this
   * event; entries marked dead are skipped and stay linked until sweep. */
  for (struct ice_sub_s *s = e->subs; s != NULL; s = s->next) {
    if (matches(s, type))
      s->cb(ev, s->data);
  }
  if (--e->delivering == 0)
    sweep(e);
}

json_t *ice_event_output(const ice_engine_t *e) {
  return e != NULL ? e->ev_output : NULL;
}
