/*
 * test_io_keys.c — the I/O library's object-key rules and digests.
 */
#include "test.h"
#include "imgio.h"

#include <string.h>

TEST_SUITE(io_object_keys)
{
	char		key[64];

	CHECK(imgio_variant_key(key, sizeof(key), 7, 2, "medium") &&
		  strcmp(key, "variants/7/v2/medium.jpg") == 0, "variant key: %s", key);
	CHECK(imgio_master_key(key, sizeof(key), 7, 2) &&
		  strcmp(key, "masters/7/v2/master.jpg") == 0, "master key: %s", key);
	CHECK(imgio_hires_key(key, sizeof(key), 9223372036854775807LL, 1) &&
		  strcmp(key, "hires/9223372036854775807/v1/original.jpg") == 0, "hi-res key: %s", key);
	CHECK(!imgio_variant_key(key, 16, 7, 2, "medium"), "a key cut off by its buffer is reported");
	CHECK(imgio_cache_key(key, sizeof(key), "inst", 7, 2, "source") &&
		  strcmp(key, "imgmod:inst:7:v2:source") == 0, "Redis key: %s", key);
}

TEST_SUITE(io_safe_keys)
{
	static const char *const safe[] = {
		"variants/7/v2/medium.jpg", "a", "x-y_z.0/1", "masters/1/v1/master.jpg",
	};
	static const char *const unsafe[] = {
		"", "/etc/passwd", "variants/../../etc", "..", "a..b", "Upper.jpg", "sp ace",
		"semi;colon", "percent%2e", "back\\slash", "tab\t", "new\nline", "q?x", "caf\xc3\xa9",
	};

	for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
		CHECK(imgio_key_is_safe(safe[i]), "\"%s\" is safe", safe[i]);
	for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++)
		CHECK(!imgio_key_is_safe(unsafe[i]), "\"%s\" is refused", unsafe[i]);
	CHECK(!imgio_key_is_safe(NULL), "no key is refused");
}

TEST_SUITE(io_digests)
{
	char		hex[IMGIO_DIGEST_HEX_MAX];
	char		md5[33];
	imgio_error err = {0};

	CHECK(imgio_digest_hex(IMGIO_DIGEST_SHA256, (const uint8_t *) "abc", 3, hex, &err) &&
		  strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
		  "SHA-256 of abc: %s (%s)", hex, err.message);
	CHECK(imgio_digest_hex(IMGIO_DIGEST_SHA256, (const uint8_t *) "", 0, hex, &err) &&
		  strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0,
		  "SHA-256 of nothing: %s", hex);
	CHECK(imgio_digest_hex(IMGIO_DIGEST_MD5, (const uint8_t *) "abc", 3, hex, &err) &&
		  strcmp(hex, "900150983cd24fb0d6963f7d28e17f72") == 0, "MD5 of abc: %s", hex);
	CHECK(imgio_etag_md5("\"900150983CD24FB0D6963F7D28E17F72\"", md5) &&
		  strcmp(md5, "900150983CD24FB0D6963F7D28E17F72") == 0, "a quoted MD5 ETag is read: %s", md5);
	CHECK(!imgio_etag_md5("\"900150983cd24fb0d6963f7d28e17f72-2\"", md5),
		  "a multipart ETag is no digest");
	CHECK(!imgio_etag_md5("900150983cd24fb0d6963f7d28e17f72", md5), "an unquoted ETag is refused");
	CHECK(!imgio_etag_md5(NULL, md5), "no ETag is refused");
}
