/*
 * harness_selftest.c — suites that must make the unit-test runner fail:
 * one that makes no check, and a corpus suite run without the corpus.
 * `make selftest` links them with main.c and expects a non-zero exit and
 * the runner's message for each.
 */
#include "../test.h"

TEST_SUITE(selftest_makes_no_check)
{
}

CORPUS_SUITE(selftest_needs_corpus)
{
	CHECK(true, "never reached without the corpus");
}
