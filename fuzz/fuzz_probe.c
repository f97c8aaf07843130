/*
 * fuzz_probe.c — libFuzzer target for the header-only path: img_sniff,
 * img_probe under the default limits, and the file-name / content-type
 * claim parsers fed with the same bytes.
 *
 * The probe runs on every upload before any limit has been enforced, so it
 * must be safe on anything: no over-read, no allocation driven by claimed
 * sizes, no UB.  Invariants checked: a successful probe reports an accepted
 * format and non-zero dimensions within the limits.
 */
#include "imgcore.h"

#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	img_limits	lim;
	img_info	info;
	img_error	err;
	img_status	st;
	img_format	sniffed;
	char		claim[64];
	size_t		n;

	img_limits_default(&lim);
	sniffed = img_sniff(data, size);
	st = img_probe(data, size, &lim, &info, &err);
	if (st == IMG_OK)
	{
		if (!img_format_is_accepted(info.format) || info.format != sniffed ||
			info.width == 0 || info.height == 0 ||
			info.width > lim.max_side || info.height > lim.max_side ||
			(uint64_t) info.width * info.height > lim.max_pixels ||
			info.orientation < 1 || info.orientation > 8 || info.frames > lim.max_frames ||
			info.scans > lim.max_scans)
			__builtin_trap();
	}
	else if (err.status != st || memchr(err.message, '\0', sizeof(err.message)) == NULL)
		__builtin_trap();

	/* the claim parsers take NUL-terminated strings: use a prefix of the input */
	n = size < sizeof(claim) - 1 ? size : sizeof(claim) - 1;
	memcpy(claim, data, n);
	claim[n] = '\0';
	(void) img_format_from_name(claim);
	(void) img_format_from_mime(claim);
	return 0;
}
