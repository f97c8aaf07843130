/*
 * main.c — runs the repository suites, or with --corpus the suites that
 * read the shared corpus, or the suites named as arguments.  Exit status is
 * non-zero when any check failed, when a suite made no check, or when
 * corpus suites were asked for and the corpus is absent.
 */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static test_suite *suites;
static int	passed;
static int	failed;
static const char *current_suite = "?";

void
test_register(test_suite *suite)
{
	/* keep registration order stable: append */
	test_suite **p = &suites;

	while (*p)
		p = &(*p)->next;
	suite->next = NULL;
	*p = suite;
}

void
test_check(bool ok, const char *file, int line, const char *expr, const char *fmt,...)
{
	va_list		ap;

	if (ok)
	{
		passed++;
		return;
	}
	failed++;
	fprintf(stderr, "FAIL [%s] %s:%d: %s: ", current_suite, file, line, expr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool
named(const char *name, int first, int argc, char **argv)
{
	for (int i = first; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

int
main(int argc, char **argv)
{
	bool		corpus_mode = argc > 1 && strcmp(argv[1], "--corpus") == 0;
	int			first_name = corpus_mode ? 2 : 1;
	int			ran = 0;

	for (test_suite *s = suites; s; s = s->next)
	{
		int			before_failed = failed;
		int			before_checks = passed + failed;

		if (argc > first_name ? !named(s->name, first_name, argc, argv) : s->needs_corpus != corpus_mode)
			continue;
		ran++;
		current_suite = s->name;
		if (s->needs_corpus && corpus_dir() == NULL)
			CHECK(false, "suite %s needs the shared corpus (../shared/corpus or IMGMOD_CORPUS_DIR), which is absent",
				  s->name);
		else
			s->run();
		if (passed + failed == before_checks)
			CHECK(false, "suite %s ran no checks", s->name);
		printf("suite %-24s %s\n", s->name, failed == before_failed ? "ok" : "FAILED");
	}
	current_suite = "main";
	CHECK(ran > 0, "no suite matched the arguments");
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
