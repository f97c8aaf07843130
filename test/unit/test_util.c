/*
 * test_util.c — fixture and corpus access for the unit tests.
 */
#include "test.h"

#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "test/fixtures"
#endif
#ifndef CORPUS_DIR
#define CORPUS_DIR "../shared/corpus"
#endif

const char *
fixture_dir(void)
{
	const char *env = getenv("IMGMOD_FIXTURE_DIR");

	return env ? env : FIXTURE_DIR;
}

const char *
corpus_dir(void)
{
	const char *dir = getenv("IMGMOD_CORPUS_DIR");
	struct stat st;

	if (dir == NULL)
		dir = CORPUS_DIR;
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return dir;
	return NULL;
}

uint8_t *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *buf;
	long		n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
	{
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t) n + 1);
	if (buf && fread(buf, 1, (size_t) n, f) != (size_t) n)
	{
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf)
		*len = (size_t) n;
	return buf;
}

uint8_t *
read_fixture(const char *name, size_t *len)
{
	char		path[1024];

	snprintf(path, sizeof(path), "%s/%s", fixture_dir(), name);
	return read_file(path, len);
}

uint8_t *
read_corpus_file(const char *rel, size_t *len)
{
	char		path[1024];
	const char *dir = corpus_dir();
	uint8_t    *data = NULL;

	if (dir != NULL)
	{
		snprintf(path, sizeof(path), "%s/%s", dir, rel);
		data = read_file(path, len);
	}
	CHECK(data != NULL, "corpus file %s is readable", rel);
	return data;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return remove(path);
}

void
remove_tree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
