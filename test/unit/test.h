/*
 * test.h — a minimal harness for the image core's unit tests.
 *
 * Each test_*.c file declares its suites with TEST_SUITE(name) { ... };
 * suites register themselves at start-up, main.c runs them all (or those
 * named on the command line) and prints "N passed, N failed".
 */
#ifndef IMGMOD_TEST_H
#define IMGMOD_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct test_suite
{
	const char *name;
	void		(*run) (void);
	struct test_suite *next;
} test_suite;

void		test_register(test_suite *suite);
void		test_check(bool ok, const char *file, int line, const char *expr,
					   const char *fmt,...) __attribute__((format(printf, 5, 6)));

#define TEST_SUITE(NAME) \
	static void suite_##NAME(void); \
	static test_suite suite_desc_##NAME = {#NAME, suite_##NAME, NULL}; \
	__attribute__((constructor)) static void register_##NAME(void) \
	{ test_register(&suite_desc_##NAME); } \
	static void suite_##NAME(void)

/* CHECK(cond, "printf message", ...) — the message says what was expected. */
#define CHECK(cond, ...) test_check((cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

/* Helpers shared by the suites (test_util.c). */

/* Directory of committed fixtures (test/fixtures). */
const char *fixture_dir(void);
/* ../shared/corpus when it exists next to the checkout, else NULL. */
const char *corpus_dir(void);
/* Reads a whole file (malloc'd); NULL if it cannot be read. */
uint8_t    *read_file(const char *path, size_t *len);
/* Reads fixture_dir()/name. */
uint8_t    *read_fixture(const char *name, size_t *len);

#endif
