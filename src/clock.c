/* The engine's clock as executors see it: absolute times for deadlines
 * that must survive a restart, and delays that a virtual clock (tests)
 * skips instead of sleeping. */
#include "engine.h"

#include <time.h>

double ice_engine_now_ms(const ice_engine_t *e) {
  return ice__engine_now_ms(e);
}

uint64_t ice_engine_delay(ice_engine_t *e, uint64_t ms) {
  if (!e->virtual_clock)
    return ms;
  e->clock_offset_ms += ms;
  return 0;
}

double ice__engine_now_ms(const ice_engine_t *e) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6 +
         (double)e->clock_offset_ms;
}

double ice__engine_mono_ms(const ice_engine_t *e) {
  return (double)uv_hrtime() / 1e6 + (double)e->clock_offset_ms;
}
