/*
 * test.h — a minimal harness for the image core's unit tests.
 *
 * Each test_*.c file declares its suites with TEST_SUITE(name) { ... };
 * suites register themselves at start-up, main.c runs them all (or those
 * named on the command line) and prints "N passed, N failed".
 *
 * TEST_SUITE suites use only what the repository carries (test/fixtures or
 * data they generate).  CORPUS_SUITE suites read ../shared/corpus; they run
 * only with --corpus (make -C test/unit corpus), which fails when the corpus
 * is absent.  A suite that made no check at all fails: a test that silently
 * found nothing to test would otherwise look like a pass.
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
	bool		needs_corpus;
	struct test_suite *next;
} test_suite;

void		test_register(test_suite *suite);
void		test_check(bool ok, const char *file, int line, const char *expr,
					   const char *fmt,...) __attribute__((format(printf, 5, 6)));

#define SUITE_DEFINE(NAME, NEEDS_CORPUS) \
	static void suite_##NAME(void); \
	static test_suite suite_desc_##NAME = {#NAME, suite_##NAME, NEEDS_CORPUS, NULL}; \
	__attribute__((constructor)) static void register_##NAME(void) \
	{ test_register(&suite_desc_##NAME); } \
	static void suite_##NAME(void)

#define TEST_SUITE(NAME) SUITE_DEFINE(NAME, false)
#define CORPUS_SUITE(NAME) SUITE_DEFINE(NAME, true)

/* CHECK(cond, "printf message", ...) — the message says what was expected. */
#define CHECK(cond, ...) test_check((cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

/* Helpers shared by the suites (test_util.c). */

/* Directory of committed fixtures (test/fixtures). */
const char *fixture_dir(void);
/*
 * ../shared/corpus (or $IMGMOD_CORPUS_DIR) when it exists, else NULL; main.c
 * runs corpus suites only when it exists.
 */
const char *corpus_dir(void);
/* Reads corpus_dir()/rel; a file that cannot be read is a failed check. */
uint8_t    *read_corpus_file(const char *rel, size_t *len);
/* Reads a whole file (malloc'd); NULL if it cannot be read. */
uint8_t    *read_file(const char *path, size_t *len);
/* Reads fixture_dir()/name. */
uint8_t    *read_fixture(const char *name, size_t *len);
/* Removes a directory and everything below it (temporary stores). */
void		remove_tree(const char *dir);

#endif
