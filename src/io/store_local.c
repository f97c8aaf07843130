/*
 * store_local.c — the embedded object store: files under a directory.
 *
 * Used for a store that has no S3 endpoint configured.  A PUT writes a
 * temporary file, fsyncs it, renames it over the key and fsyncs the
 * directory, so a reader (or a crash) sees either the whole previous object
 * or the whole new one.  Keys pass imgio_key_is_safe(), so none can climb
 * out of the store with "..".
 */
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

static bool
refuse_unsafe_key(const char *key, imgio_error *err)
{
	return imgio_fail(err, "refusing unsafe object key \"%s\"", key);
}

static void
store_path(const imgio_store_config *store, const char *key, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", store->local_dir, key);
}

/* fsync a directory, so the entries made or removed in it survive a crash. */
static bool
fsync_dir(const char *dir)
{
	int			fd = open(dir, O_RDONLY);
	bool		ok;

	if (fd < 0)
		return false;
	ok = fsync(fd) == 0;
	close(fd);
	return ok;
}

static bool
fsync_dir_of(const char *path)
{
	char		dir[IMGIO_PATH_MAX];
	char	   *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return true;
	*slash = '\0';
	return fsync_dir(dir);
}

/*
 * mkdir -p of the directory part of path.  A directory that mkdir created
 * exists after a crash only once its parent is fsynced; the object's own
 * directory is fsynced after the rename, every parent of a directory made
 * here is fsynced now, deepest first, up to the first one that existed
 * (the store root's parent, when the root itself was made).
 */
static bool
make_parents(char *path, imgio_error *err)
{
	char	   *created[IMGIO_PATH_MAX / 2];
	int			ncreated = 0;

	for (char *p = path + 1; *p; p++)
	{
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, S_IRWXU) == 0)
			created[ncreated++] = p;
		else if (errno != EEXIST)
		{
			imgio_fail(err, "could not create directory \"%s\": %m", path);
			*p = '/';
			return false;
		}
		*p = '/';
	}
	for (int i = ncreated - 1; i >= 0; i--)
	{
		bool		ok;

		*created[i] = '\0';
		ok = fsync_dir_of(path);
		if (!ok)
			imgio_fail(err, "could not fsync the parent of new directory \"%s\": %m", path);
		*created[i] = '/';
		if (!ok)
			return false;
	}
	return true;
}

/* Temporary names unique per process and per call, so threads never share one. */
static atomic_uint temp_sequence;

bool
imgio_local_put(const imgio_store_config *store, const char *key, const uint8_t *data,
				size_t len, imgio_error *err)
{
	char		path[IMGIO_PATH_MAX];
	char		tmp[IMGIO_PATH_MAX + 32];
	int			fd;
	size_t		done = 0;

	if (!imgio_key_is_safe(key))
		return refuse_unsafe_key(key, err);
	store_path(store, key, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%u", path, (int) getpid(),
			 atomic_fetch_add(&temp_sequence, 1));
	if (!make_parents(path, err))
		return false;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, S_IRUSR | S_IWUSR);
	if (fd < 0)
		return imgio_fail(err, "could not create \"%s\": %m", tmp);
	while (done < len)
	{
		ssize_t		n = write(fd, data + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			imgio_fail(err, "could not write \"%s\": %m", tmp);
			close(fd);
			unlink(tmp);
			return false;
		}
		done += (size_t) n;
	}
	if (fsync(fd) != 0)
	{
		imgio_fail(err, "could not fsync \"%s\": %m", tmp);
		close(fd);
		unlink(tmp);
		return false;
	}
	close(fd);
	if (rename(tmp, path) != 0)
	{
		imgio_fail(err, "could not rename \"%s\" to \"%s\": %m", tmp, path);
		unlink(tmp);
		return false;
	}
	if (!fsync_dir_of(path))
		return imgio_fail(err, "could not fsync the directory of \"%s\": %m", path);
	return true;
}

bool
imgio_local_get(const imgio_store_config *store, const char *key, size_t expected_bytes,
				uint8_t *dest, size_t *got, imgio_error *err)
{
	char		path[IMGIO_PATH_MAX];
	struct stat st;
	int			fd;
	size_t		done = 0;

	if (!imgio_key_is_safe(key))
		return refuse_unsafe_key(key, err);
	store_path(store, key, path, sizeof(path));
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return imgio_fail(err, "could not open object \"%s\": %m", key);
	if (fstat(fd, &st) != 0)
	{
		imgio_fail(err, "could not size object \"%s\": %m", key);
		close(fd);
		return false;
	}
	if ((uint64_t) st.st_size != (uint64_t) expected_bytes)
	{
		imgio_fail(err, "object \"%s\" is %lld bytes but imgmod recorded %zu bytes for it; refusing it",
				   key, (long long) st.st_size, expected_bytes);
		close(fd);
		return false;
	}
	while (done < expected_bytes)
	{
		ssize_t		n = read(fd, dest + done, expected_bytes - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			imgio_fail(err, "could not read object \"%s\": %m", key);
			close(fd);
			return false;
		}
		done += (size_t) n;
	}
	close(fd);
	*got = done;
	return true;
}

/*
 * unlink, then fsync the directory so the removal survives a crash, then
 * remove the now-empty version directory (best effort: another object of
 * the version may still be there).
 */
bool
imgio_local_delete(const imgio_store_config *store, const char *key, imgio_error *err)
{
	char		path[IMGIO_PATH_MAX];
	char	   *slash;

	if (!imgio_key_is_safe(key))
		return refuse_unsafe_key(key, err);
	store_path(store, key, path, sizeof(path));
	if (unlink(path) != 0)
	{
		if (errno == ENOENT)
			return true;
		return imgio_fail(err, "could not remove object \"%s\": %m", key);
	}
	if (!fsync_dir_of(path))
		return imgio_fail(err, "could not fsync the directory of \"%s\": %m", path);
	slash = strrchr(path, '/');
	if (slash != NULL)
	{
		*slash = '\0';
		(void) rmdir(path);
	}
	return true;
}

/* The root directory exists and this process may list and read it. */
bool
imgio_local_probe(const imgio_store_config *store, imgio_error *err)
{
	struct stat st;

	if (store->local_dir == NULL || store->local_dir[0] == '\0')
		return imgio_fail(err, "the %s store has no directory", store->name);
	if (stat(store->local_dir, &st) != 0)
		return imgio_fail(err, "store directory \"%s\" cannot be reached: %m", store->local_dir);
	if (!S_ISDIR(st.st_mode))
		return imgio_fail(err, "store directory \"%s\" is not a directory", store->local_dir);
	if (access(store->local_dir, R_OK | X_OK) != 0)
		return imgio_fail(err, "store directory \"%s\" cannot be read: %m", store->local_dir);
	return true;
}
