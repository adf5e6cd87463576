/* Unit tests of src/retry.c: the back-off delays of SPEC §4.4, exact for
 * every strategy, the cap, rounding to milliseconds, and full jitter
 * (uniform in [0, d], drawn from the caller's random number). */
#include "helpers.h"

#include "retry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ice__retry_t policy(ice__backoff_t strategy, double b, double cap,
                           int jitter) {
  ice__retry_t p;

  memset(&p, 0, sizeof(p));
  p.max_attempts = 10;
  p.strategy = strategy;
  p.backoff_seconds = b;
  p.max_backoff_seconds = cap;
  p.jitter = jitter;
  return p;
}

static void test_fixed(void **state) {
  ice__retry_t p = policy(ICE__BACKOFF_FIXED, 1.5, 60, 0);

  (void)state;
  for (unsigned n = 1; n <= 10; n++)
    assert_int_equal(ice__retry_delay_ms(&p, n, 12345), 1500);
}

static void test_linear(void **state) {
  ice__retry_t p = policy(ICE__BACKOFF_LINEAR, 0.5, 60, 0);

  (void)state;
  assert_int_equal(ice__retry_delay_ms(&p, 1, 0), 500);
  assert_int_equal(ice__retry_delay_ms(&p, 2, 0), 1000);
  assert_int_equal(ice__retry_delay_ms(&p, 3, 0), 1500);
  assert_int_equal(ice__retry_delay_ms(&p, 10, 0), 5000);
  /* 0.1 * 3 is 0.30000000000000004 in binary: still 300 ms. */
  p.backoff_seconds = 0.1;
  assert_int_equal(ice__retry_delay_ms(&p, 3, 0), 300);
  assert_int_equal(ice__retry_delay_ms(&p, 7, 0), 700);
}

static void test_exponential(void **state) {
  ice__retry_t p = policy(ICE__BACKOFF_EXPONENTIAL, 1.0, 1000, 0);

  (void)state;
  assert_int_equal(ice__retry_delay_ms(&p, 1, 0), 1000);
  assert_int_equal(ice__retry_delay_ms(&p, 2, 0), 2000);
  assert_int_equal(ice__retry_delay_ms(&p, 3, 0), 4000);
  assert_int_equal(ice__retry_delay_ms(&p, 4, 0), 8000);
  assert_int_equal(ice__retry_delay_ms(&p, 9, 0), 256000);
  p.backoff_seconds = 0.25;
  assert_int_equal(ice__retry_delay_ms(&p, 1, 0), 250);
  assert_int_equal(ice__retry_delay_ms(&p, 3, 0), 1000);
}

static void test_cap(void **state) {
  ice__retry_t p = policy(ICE__BACKOFF_EXPONENTIAL, 1.0, 5.0, 0);

  (void)state;
  assert_int_equal(ice__retry_delay_ms(&p, 3, 0), 4000);
  assert_int_equal(ice__retry_delay_ms(&p, 4, 0), 5000);
  assert_int_equal(ice__retry_delay_ms(&p, 5, 0), 5000);
  /* Huge retry numbers neither overflow nor escape the cap. */
  assert_int_equal(ice__retry_delay_ms(&p, 64, 0), 5000);
  assert_int_equal(ice__retry_delay_ms(&p, 1000, 0), 5000);
  assert_int_equal(ice__retry_delay_ms(&p, UINT32_MAX, 0), 5000);

  p = policy(ICE__BACKOFF_LINEAR, 2.0, 7.0, 0);
  assert_int_equal(ice__retry_delay_ms(&p, 3, 0), 6000);
  assert_int_equal(ice__retry_delay_ms(&p, 4, 0), 7000);
  assert_int_equal(ice__retry_delay_ms(&p, UINT32_MAX, 0), 7000);

  /* The cap also bounds a fixed delay bigger than it. */
  p = policy(ICE__BACKOFF_FIXED, 90.0, 60.0, 0);
  assert_int_equal(ice__retry_delay_ms(&p, 1, 0), 60000);

  /* A cap of 0 means retry at once. */
  p = policy(ICE__BACKOFF_EXPONENTIAL, 1.0, 0.0, 0);
  assert_int_equal(ice__retry_delay_ms(&p, 1, 0), 0);
  assert_int_equal(ice__retry_delay_ms(&p, 5, 0), 0);

  /* The SPEC defaults: exponential from 1 s, capped at 60 s. */
  p = policy(ICE__BACKOFF_EXPONENTIAL, 1.0, 60.0, 0);
  assert_int_equal(ice__retry_delay_ms(&p, 6, 0), 32000);
  assert_int_equal(ice__retry_delay_ms(&p, 7, 0), 60000);
}

static void test_zero_backoff(void **state) {
  ice__retry_t p = policy(ICE__BACKOFF_EXPONENTIAL, 0.0, 60, 0);

  (void)state;
  for (unsigned n = 1; n < 70; n++)
    assert_int_equal(ice__retry_delay_ms(&p, n, 99), 0);
  p.jitter = 1;
  assert_int_equal(ice__retry_delay_ms(&p, 3, UINT32_MAX), 0);
}

static void test_retry_zero_is_first(void **state) {
  ice__retry_t p = policy(ICE__BACKOFF_LINEAR, 1.0, 60, 0);

  (void)state;
  /* n < 1 is treated as the first retry, never as a zero delay. */
  assert_int_equal(ice__retry_delay_ms(&p, 0, 0), 1000);
  p.strategy = ICE__BACKOFF_EXPONENTIAL;
  assert_int_equal(ice__retry_delay_ms(&p, 0, 0), 1000);
}

static void test_millisecond_rounding(void **state) {
  ice__retry_t p = policy(ICE__BACKOFF_FIXED, 0.001, 60, 0);

  (void)state;
  assert_int_equal(ice__retry_delay_ms(&p, 1, 0), 1);
  p.backoff_seconds = 0.0304;
  assert_int_equal(ice__retry_delay_ms(&p, 1, 0), 30);
  p.backoff_seconds = 2.9996;
  assert_int_equal(ice__retry_delay_ms(&p, 1, 0), 3000);
}

static void test_jitter_bounds(void **state) {
  ice__retry_t p = policy(ICE__BACKOFF_EXPONENTIAL, 1.0, 60, 1);
  uint64_t lo = UINT64_MAX, hi = 0;

  (void)state;
  /* d = 2000 for the second retry: the delay is rnd mod 2001. */
  assert_int_equal(ice__retry_delay_ms(&p, 2, 0), 0);
  assert_int_equal(ice__retry_delay_ms(&p, 2, 1234), 1234);
  assert_int_equal(ice__retry_delay_ms(&p, 2, 2000), 2000);
  assert_int_equal(ice__retry_delay_ms(&p, 2, 2001), 0);
  assert_int_equal(ice__retry_delay_ms(&p, 2, UINT32_MAX),
                   (uint64_t)UINT32_MAX % 2001);
  srandom(7);
  for (int i = 0; i < 20000; i++) {
    uint64_t ms = ice__retry_delay_ms(&p, 2, (uint32_t)random());
    assert_true(ms <= 2000);
    if (ms < lo)
      lo = ms;
    if (ms > hi)
      hi = ms;
  }
  /* Full jitter spreads over the whole interval. */
  assert_true(lo < 100);
  assert_true(hi > 1900);
}

static void test_jitter_with_cap(void **state) {
  ice__retry_t p = policy(ICE__BACKOFF_EXPONENTIAL, 1.0, 3.0, 1);

  (void)state;
  srandom(11);
  for (int i = 0; i < 5000; i++) {
    uint64_t ms = ice__retry_delay_ms(&p, 10, (uint32_t)random());
    assert_true(ms <= 3000);
  }
  assert_int_equal(ice__retry_delay_ms(&p, 10, 3000), 3000);
  assert_int_equal(ice__retry_delay_ms(&p, 10, 3001), 0);
  /* Linear and fixed jitter the same way. */
  p.strategy = ICE__BACKOFF_LINEAR;
  p.max_backoff_seconds = 60;
  assert_int_equal(ice__retry_delay_ms(&p, 3, 3001), 3001 % 3001);
  assert_int_equal(ice__retry_delay_ms(&p, 3, 2999), 2999);
  p.strategy = ICE__BACKOFF_FIXED;
  assert_int_equal(ice__retry_delay_ms(&p, 3, 1001), 0);
  assert_int_equal(ice__retry_delay_ms(&p, 3, 1000), 1000);
}

static void test_pure(void **state) {
  ice__retry_t p = policy(ICE__BACKOFF_EXPONENTIAL, 1.0, 60, 1);
  ice__retry_t copy = p;

  (void)state;
  /* The same inputs give the same delay, and the policy is not changed. */
  for (int i = 0; i < 10; i++)
    assert_int_equal(ice__retry_delay_ms(&p, 3, 777), 777);
  assert_int_equal(p.strategy, copy.strategy);
  assert_true(p.backoff_seconds == copy.backoff_seconds);
  assert_true(p.max_backoff_seconds == copy.max_backoff_seconds);
  assert_int_equal(p.jitter, copy.jitter);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixed),
      cmocka_unit_test(test_linear),
      cmocka_unit_test(test_exponential),
      cmocka_unit_test(test_cap),
      cmocka_unit_test(test_zero_backoff),
      cmocka_unit_test(test_retry_zero_is_first),
      cmocka_unit_test(test_millisecond_rounding),
      cmocka_unit_test(test_jitter_bounds),
      cmocka_unit_test(test_jitter_with_cap),
      cmocka_unit_test(test_pure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
