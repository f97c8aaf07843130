/*
 * errors.c — the stable SQLSTATE and advice for every rejection reason.
 *
 * Rejections live in class 22 (data exception) so generic error handling
 * treats them as bad input, with an implementation-defined subclass 'I'.
 * These codes are part of imgmod's interface: never renumber them.
 */
#include "imgmod.h"

#include "miscadmin.h"
#include "utils/elog.h"

typedef struct reason_code
{
	const char *text;
	int			code;
	const char *hint;
} reason_code;

static const reason_code codes[IMG_STATUS_COUNT] = {
	[IMG_OK] = {"00000", MAKE_SQLSTATE('0', '0', '0', '0', '0'), NULL},
	[IMG_ERR_EMPTY] = {"22I00", MAKE_SQLSTATE('2', '2', 'I', '0', '0'),
	"Pass the file's bytes, e.g. pg_read_binary_file() or a bytea parameter."},
	[IMG_ERR_UNKNOWN_FORMAT] = {"22I01", MAKE_SQLSTATE('2', '2', 'I', '0', '1'),
	"Upload a JPEG, PNG, GIF, WebP, HEIC/HEIF, AVIF, TIFF or BMP file; the type is decided by the bytes, not the file name."},
	[IMG_ERR_UNSUPPORTED_FORMAT] = {"22I02", MAKE_SQLSTATE('2', '2', 'I', '0', '2'),
	"Convert the file to JPEG or PNG before uploading; documents, vector graphics and archives are never rasterised."},
	[IMG_ERR_TYPE_MISMATCH] = {"22I03", MAKE_SQLSTATE('2', '2', 'I', '0', '3'),
	"Send the real file name and content type, or set imgmod.mismatch_policy = warn to accept and record mismatches."},
	[IMG_ERR_TOO_MANY_BYTES] = {"22I04", MAKE_SQLSTATE('2', '2', 'I', '0', '4'),
	"Upload a smaller file or raise imgmod.max_bytes."},
	[IMG_ERR_BAD_DIMENSIONS] = {"22I05", MAKE_SQLSTATE('2', '2', 'I', '0', '5'),
	"The header's width or height is zero or longer than imgmod.max_side."},
	[IMG_ERR_TOO_MANY_PIXELS] = {"22I06", MAKE_SQLSTATE('2', '2', 'I', '0', '6'),
	"Downscale the image before upload or raise imgmod.max_megapixels."},
	[IMG_ERR_TOO_MANY_FRAMES] = {"22I07", MAKE_SQLSTATE('2', '2', 'I', '0', '7'),
	"Only the first frame is kept; upload a still image or raise imgmod.max_frames."},
	[IMG_ERR_TOO_MANY_SCANS] = {"22I08", MAKE_SQLSTATE('2', '2', 'I', '0', '8'),
	"Re-save the JPEG as baseline or normal progressive; raise imgmod.max_scans only for trusted sources."},
	[IMG_ERR_METADATA_TOO_LARGE] = {"22I09", MAKE_SQLSTATE('2', '2', 'I', '0', '9'),
	"Strip the file's metadata before upload or raise imgmod.max_metadata."},
	[IMG_ERR_TRUNCATED] = {"22I10", MAKE_SQLSTATE('2', '2', 'I', '1', '0'),
	"The file is incomplete: upload it again from the original."},
	[IMG_ERR_CORRUPT] = {"22I11", MAKE_SQLSTATE('2', '2', 'I', '1', '1'),
	"The file is damaged or not what its header says: re-export it from the original."},
	[IMG_ERR_NO_MEMORY] = {"53200", MAKE_SQLSTATE('5', '3', '2', '0', '0'),
	"Lower imgmod.max_megapixels or give the server more memory."},
	[IMG_ERR_INTERNAL] = {"XX000", MAKE_SQLSTATE('X', 'X', '0', '0', '0'), NULL},
	[IMG_ERR_INTERRUPTED] = {"57014", MAKE_SQLSTATE('5', '7', '0', '1', '4'), NULL},
	[IMG_ERR_BAD_EDIT] = {"22I12", MAKE_SQLSTATE('2', '2', 'I', '1', '2'),
	"Fix the named edit operation: crops inside the image, rotations of 90, 180 or 270 degrees, aspects of positive integers, focal points inside the image."},
};

int
imgmod_sqlstate_for(img_status status)
{
	if ((int) status < 0 || status >= IMG_STATUS_COUNT)
		status = IMG_ERR_INTERNAL;
	return codes[status].code;
}

const char *
imgmod_sqlstate_text(img_status status)
{
	if ((int) status < 0 || status >= IMG_STATUS_COUNT)
		status = IMG_ERR_INTERNAL;
	return codes[status].text;
}

const char *
imgmod_hint_for(img_status status)
{
	if ((int) status < 0 || status >= IMG_STATUS_COUNT)
		return NULL;
	return codes[status].hint;
}

/*
 * The core stopped because its interrupt hook saw a cancel, statement
 * timeout or termination pending: raise that error now, outside every
 * decoder.  Should CHECK_FOR_INTERRUPTS() not raise (cancel interrupts are
 * held off), the image work is lost all the same, so say so.
 */
void
imgmod_core_interrupted(img_status status)
{
	if (status != IMG_ERR_INTERRUPTED)
		return;
	CHECK_FOR_INTERRUPTS();
	ereport(ERROR,
			(errcode(imgmod_sqlstate_for(IMG_ERR_INTERRUPTED)),
			 errmsg("imgmod: image processing was interrupted")));
}
