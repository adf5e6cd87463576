/* Events of SPEC §10: built here for every emitter (the commit point,
 * runs, executors), and only when a subscriber wants the type. The run's
 * seq advances either way, so numbering has no gaps. */
#include "core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* RFC 3339 with milliseconds, UTC. The date and time up to the second are
 * formatted once per second and kept: events come thousands per second,
 * and gmtime plus a full printf cost more than the rest of an event. */
static void format_ts(double ms, char *buf, size_t len) {
  static _Thread_local time_t last_sec = (time_t)-1;
  static _Thread_local char last[32];
  time_t sec = (time_t)(ms / 1000.0);
  int milli = (int)((long long)ms % 1000);

  if (sec != last_sec) {
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(last, sizeof(last), "%04d-%02d-%02dT%02d:%02d:%02d",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
    last_sec = sec;
  }
  if (milli < 0)
    milli = 0;
  if (len >= 25) {
    memcpy(buf, last, 19);
    buf[19] = '.';
    buf[20] = (char)('0' + milli / 100);
    buf[21] = (char)('0' + milli / 10 % 10);
    buf[22] = (char)('0' + milli % 10);
    buf[23] = 'Z';
    buf[24] = '\0';
  }
}

json_t *ice__with_parent(const ice_run_t *r, json_t *fields) {
  if (fields != NULL && r->parent_node_id != NULL &&
      (json_object_set_new(fields, "parent_run_id",
                           json_string(r->parent_run_id)) != 0 ||
       json_object_set_new(fields, "parent_node_id",
                           json_string(r->parent_node_id)) != 0)) {
    json_decref(fields);
    return NULL; /* ENOMEM: ice__emit reports it */
  }
  return fields;
}

void ice__emit(ice_run_t *r, ice__event_t type, const ice__frame_t *f,
               uint32_t k, json_t *fields) {
  const char *name = ice__event_name(type);
  json_t *ev;
  char ts[40];
  uint64_t seq = ++r->seq;
  int bad = fields == NULL; /* callers pass NULL fields only on ENOMEM */

  ev = json_object();
  if (ev == NULL || bad) {
    json_decref(ev);
    json_decref(fields);
    ice__run_fault(r, "out of memory: an event was lost");
    return;
  }
  format_ts(ice__engine_now_ms(r->engine), ts, sizeof(ts));
  bad |= json_object_set_new(ev, "type", json_string(name));
  bad |= json_object_set_new(ev, "seq", json_integer((json_int_t)seq));
  bad |= json_object_set_new(ev, "ts", json_string(ts));
  bad |= json_object_set_new(ev, "run_id", json_string(r->id));
  if (f != NULL)
    bad |= json_object_set_new(
        ev, "node_id", json_string(r->wf->nodes[f->scope->nodes[k]].id));
  if (f != NULL && f->parent != NULL) {
    bad |=
        json_object_set_new(ev, "parent_id", json_string(f->parent->node->id));
    /* Nested nodes carry the index of their innermost loop. */
    for (const ice__frame_t *p = f; p != NULL;
         p = p->parent != NULL ? p->parent->frame : NULL) {
      if (p->index >= 0) {
        bad |= json_object_set_new(ev, "index", json_integer(p->index));
        break;
      }
    }
  }
  bad |= json_object_update(ev, fields);
  json_decref(fields);
  if (bad)
    ice__run_fault(r, "out of memory: an event was lost");
  else
    ice__bus_emit(r->engine, name, ev);
  json_decref(ev);
}
