/* The names of node states, skip reasons, event types and node-instance
 * changes, generated from the X-macro tables of states.h. */
#include "states.h"

#include <string.h>

_Static_assert(ICE__EV_COUNT <= 32, "bus.c keeps one bit per event type");

static const char *const event_names[] = {
#define XX(name, str) str,
    ICE__EVENT_MAP(XX)
#undef XX
};

static const char *const state_names[] = {
#define XX(name, str) str,
    ICE__STATE_MAP(XX)
#undef XX
};

static const char *const skip_names[] = {
#define XX(name, str) str,
    ICE__SKIP_MAP(XX)
#undef XX
};

static const char *const change_names[] = {
#define XX(name, str) str,
    ICE__CHANGE_MAP(XX)
#undef XX
};

const char *ice__event_name(int ev) {
  return ev >= 0 && ev < ICE__EV_COUNT ? event_names[ev] : "";
}

const char *ice__state_name(int state) {
  return state >= 0 && state < ICE__ST_COUNT ? state_names[state] : "";
}

const char *ice__skip_name(int skip) {
  return skip >= 0 && skip < ICE__SKIP_COUNT ? skip_names[skip] : "";
}

const char *ice__change_name(int change) {
  return change >= 0 && change < ICE__CH_COUNT ? change_names[change] : "";
}

int ice__change_from_name(const char *name) {
  for (int i = 0; i < ICE__CH_COUNT; i++) {
    if (strcmp(change_names[i], name) == 0)
      return i;
  }
  return -1;
}
