/*
 * main.c — runs every registered suite, or those named as arguments.
 * Exit status is non-zero when any check failed.
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
wanted(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return true;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

int
main(int argc, char **argv)
{
	for (test_suite *s = suites; s; s = s->next)
	{
		int			before = failed;

		if (!wanted(s->name, argc, argv))
			continue;
		current_suite = s->name;
		s->run();
		printf("suite %-24s %s\n", s->name, failed == before ? "ok" : "FAILED");
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
