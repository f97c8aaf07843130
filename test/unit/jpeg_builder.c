/*
 * jpeg_builder.c — JPEG fixtures generated in the unit tests: synthetic
 * rasters encoded with the core encoder, metadata segments spliced in by
 * hand, so the tests carry no large files.  See jpeg_builder.h.
 */
#include "jpeg_builder.h"

#include <setjmp.h>

#include <stdlib.h>
#include <string.h>
#include <lcms2.h>

/* libjpeg's errors end the write through a longjmp, without a word. */
typedef struct quiet_error
{
	struct jpeg_error_mgr pub;
	jmp_buf		jump;
} quiet_error;

static void
quiet_exit(j_common_ptr cinfo)
{
	longjmp(((quiet_error *) cinfo->err)->jump, 1);
}

/* Encodes r with libjpeg as k says (script: a scan script of n scans, or NULL), into out. */
bool
jb_write_kind_scripted(const jb_jpeg_kind *k, const img_raster *r, const jpeg_scan_info *script, int n, jb_buf *out)
{
	struct jpeg_compress_struct c;
	quiet_error jerr;
	unsigned char *mem = NULL;
	unsigned long memlen = 0;
	uint8_t    *row = malloc((size_t) r->width * 3);
	jpeg_scan_info scans[3];

	memset(out, 0, sizeof(*out));
	if (row == NULL)
		return false;
	c.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = quiet_exit;
	if (setjmp(jerr.jump))
	{
		jpeg_destroy_compress(&c);
		free(mem);
		free(row);
		return false;
	}
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &mem, &memlen);
	c.image_width = r->width;
	c.image_height = r->height;
	c.input_components = k->grey ? 1 : 3;
	c.in_color_space = k->grey ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 85, TRUE);
	if (!k->grey)
	{
		c.comp_info[0].h_samp_factor = k->h0;
		c.comp_info[0].v_samp_factor = k->v0;
		if (k->ids == 'R')
		{
			c.comp_info[0].component_id = 'R';
			c.comp_info[1].component_id = 'G';
			c.comp_info[2].component_id = 'B';
		}
	}
	c.write_JFIF_header = k->jfif;
	c.write_Adobe_marker = k->adobe;
	c.arith_code = k->arithmetic;
	c.optimize_coding = k->optimise;
	c.restart_in_rows = k->restart_rows;
	c.restart_interval = k->restart_mcus;
	if (script != NULL)
	{
		c.scan_info = script;
		c.num_scans = n;
	}
	else if (k->progressive)
		jpeg_simple_progression(&c);
	if (k->scan_per_component)
	{
		for (int i = 0; i < 3; i++)
		{
			scans[i].comps_in_scan = 1;
			scans[i].component_index[0] = i;
			scans[i].Ss = 0;
			scans[i].Se = 63;
			scans[i].Ah = scans[i].Al = 0;
		}
		c.scan_info = scans;
		c.num_scans = 3;
	}
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height)
	{
		const uint8_t *src = r->pixels + (size_t) c.next_scanline * r->stride;
		JSAMPROW	rp = (JSAMPROW) src;

		if (k->grey)
		{
			for (uint32_t x = 0; x < r->width; x++)
				row[x] = (uint8_t) ((src[3 * x] * 77 + src[3 * x + 1] * 150 + src[3 * x + 2] * 29) >> 8);
			rp = row;
		}
		jpeg_write_scanlines(&c, &rp, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(row);
	return jb_take(out, mem, memlen);
}

bool
jb_write_kind(const jb_jpeg_kind *k, const img_raster *r, jb_buf *out)
{
	return jb_write_kind_scripted(k, r, NULL, 0, out);
}

void
jb_free(jb_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

bool
jb_make_raster(img_raster *r, uint32_t w, uint32_t h, jb_pixel_fn fill, const void *arg)
{
	img_error	err;

	if (img_raster_init(r, w, h, 3, &err) != IMG_OK)
		return false;
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			fill(r->pixels + y * r->stride + x * 3, x, y, w, h, arg);
	return true;
}

static void
gradient_pixel(uint8_t *p, uint32_t x, uint32_t y, uint32_t w, uint32_t h, const void *arg)
{
	(void) arg;
	p[0] = (uint8_t) (w > 1 ? x * 255 / (w - 1) : 0);
	p[1] = (uint8_t) (h > 1 ? y * 255 / (h - 1) : 0);
	p[2] = 128;
}

/* Horizontal red ramp, vertical green ramp, constant blue. */
bool
jb_make_gradient(img_raster *r, uint32_t w, uint32_t h)
{
	return jb_make_raster(r, w, h, gradient_pixel, NULL);
}

static void
solid_pixel(uint8_t *p, uint32_t x, uint32_t y, uint32_t w, uint32_t h, const void *arg)
{
	const uint8_t *rgb = arg;

	(void) x;
	(void) y;
	(void) w;
	(void) h;
	p[0] = rgb[0];
	p[1] = rgb[1];
	p[2] = rgb[2];
}

bool
jb_make_solid(img_raster *r, uint32_t w, uint32_t h, uint8_t cr, uint8_t cg, uint8_t cb)
{
	const uint8_t rgb[3] = {cr, cg, cb};

	return jb_make_raster(r, w, h, solid_pixel, rgb);
}

/* Encode with the core encoder into a malloc'd buffer. */
bool
jb_encode(const img_raster *r, int quality, jb_buf *out)
{
	img_buffer	b;
	img_error	err;

	out->data = NULL;
	out->len = 0;
	if (img_encode_jpeg(r, quality, &b, &err) != IMG_OK)
		return false;
	out->data = malloc(b.len);
	if (out->data)
	{
		memcpy(out->data, b.data, b.len);
		out->len = b.len;
	}
	img_buffer_free(&b);
	return out->data != NULL;
}

bool
jb_gradient_jpeg(uint32_t w, uint32_t h, int quality, jb_buf *out)
{
	img_raster	r;
	bool		ok;

	if (!jb_make_gradient(&r, w, h))
		return false;
	ok = jb_encode(&r, quality, out);
	img_raster_free(&r);
	return ok;
}

bool
jb_take(jb_buf *out, void *mem, size_t len)
{
	out->data = mem ? malloc(len ? len : 1) : NULL;
	out->len = out->data ? len : 0;
	if (out->data)
		memcpy(out->data, mem, len);
	free(mem);
	return out->data != NULL;
}

/* Append one marker segment (FF marker length payload) to seg. */
void
jb_add_segment(jb_buf *seg, uint8_t marker, const void *payload, size_t plen)
{
	uint8_t    *p = realloc(seg->data, seg->len + plen + 4);

	if (p == NULL)
		return;
	seg->data = p;
	p += seg->len;
	p[0] = 0xFF;
	p[1] = marker;
	p[2] = (uint8_t) ((plen + 2) >> 8);
	p[3] = (uint8_t) (plen + 2);
	memcpy(p + 4, payload, plen);
	seg->len += plen + 4;
}

void
jb_add_camera_metadata(jb_buf *seg, bool be, int orientation)
{
	uint8_t		buf[4096];
	size_t		plen;

	jb_add_segment(seg, 0xE1, buf, jb_build_exif(buf, be, orientation, true, "IMGMOD-CANARY-EXIF"));
	jb_add_segment(seg, 0xE1, jb_xmp_packet, jb_xmp_packet_len);
	jb_add_segment(seg, 0xE2, buf, jb_build_icc_app2(buf, sizeof(buf), &plen));
	jb_add_segment(seg, 0xED, buf, jb_build_app13(buf));
	jb_add_segment(seg, 0xFE, "IMGMOD-CANARY-COM", 17);
}

/* SOI + segments + the rest of jpeg (after its SOI) + trailer. */
jb_buf
jb_splice(const jb_buf *jpeg, const jb_buf *segments, const void *trailer, size_t tlen)
{
	jb_buf		out;
	size_t		slen = segments ? segments->len : 0;

	out.len = jpeg->len + slen + tlen;
	out.data = malloc(out.len);
	if (out.data == NULL)
	{
		out.len = 0;
		return out;
	}
	memcpy(out.data, jpeg->data, 2);
	if (slen)
		memcpy(out.data + 2, segments->data, slen);
	memcpy(out.data + 2 + slen, jpeg->data + 2, jpeg->len - 2);
	if (tlen)
		memcpy(out.data + jpeg->len + slen, trailer, tlen);
	return out;
}

void
jb_put16(uint8_t *p, bool be, unsigned v)
{
	if (be)
	{
		p[0] = (uint8_t) (v >> 8);
		p[1] = (uint8_t) v;
	}
	else
	{
		p[0] = (uint8_t) v;
		p[1] = (uint8_t) (v >> 8);
	}
}

void
jb_put32(uint8_t *p, bool be, uint32_t v)
{
	if (be)
	{
		jb_put16(p, true, v >> 16);
		jb_put16(p + 2, true, v & 0xFFFF);
	}
	else
	{
		jb_put16(p, false, v & 0xFFFF);
		jb_put16(p + 2, false, v >> 16);
	}
}

uint8_t *
jb_ifd_entry(uint8_t *p, bool be, unsigned tag, unsigned type, uint32_t count)
{
	jb_put16(p, be, tag);
	jb_put16(p + 2, be, type);
	jb_put32(p + 4, be, count);
	memset(p + 8, 0, 4);
	return p + 8;
}

/*
 * An APP1 EXIF payload ("Exif\0\0" + TIFF block) built by hand: IFD0 with
 * ImageDescription (the canary, when given), Orientation (when 0..65535,
 * i.e. orientation >= 0) and a GPS IFD pointer (when gps).  Returns the
 * payload length.
 */
size_t
jb_build_exif(uint8_t *buf, bool be, int orientation, bool gps, const char *canary)
{
	uint8_t    *t = buf + 6;	/* TIFF header */
	int			n = (canary ? 1 : 0) + (orientation >= 0 ? 1 : 0) + (gps ? 1 : 0);
	uint32_t	ifd0 = 8;
	uint32_t	after_ifd0 = ifd0 + 2 + 12 * n + 4;
	uint32_t	gps_ifd = after_ifd0;
	uint32_t	str = gps ? gps_ifd + 2 + 12 + 4 : after_ifd0;
	uint8_t    *e = t + ifd0 + 2;
	size_t		clen = canary ? strlen(canary) + 1 : 0;

	memcpy(buf, "Exif\0\0", 6);
	memcpy(t, be ? "MM\0*" : "II*\0", 4);
	jb_put32(t + 4, be, ifd0);
	jb_put16(t + ifd0, be, (unsigned) n);
	if (canary)
	{
		jb_put32(jb_ifd_entry(e, be, 0x010E, 2, (uint32_t) clen), be, str);
		e += 12;
	}
	if (orientation >= 0)
	{
		jb_put16(jb_ifd_entry(e, be, 0x0112, 3, 1), be, (unsigned) orientation);
		e += 12;
	}
	if (gps)
	{
		jb_put32(jb_ifd_entry(e, be, 0x8825, 4, 1), be, gps_ifd);
		e += 12;
	}
	jb_put32(e, be, 0);			/* no IFD1 */
	if (gps)
	{
		uint8_t    *g = t + gps_ifd;
		uint8_t    *v;

		jb_put16(g, be, 1);
		v = jb_ifd_entry(g + 2, be, 0x0000, 1, 4);	/* GPSVersionID 2.3.0.0 */
		v[0] = 2;
		v[1] = 3;
		jb_put32(g + 2 + 12, be, 0);
	}
	if (canary)
		memcpy(t + str, canary, clen);
	return 6 + str + clen;
}

const char jb_xmp_packet[] =
"http://ns.adobe.com/xap/1.0/\0"
"<?xpacket begin='\xEF\xBB\xBF' id='W5M0MpCehiHzreSzNTczkc9d'?>"
"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
"<rdf:Description xmlns:dc='http://purl.org/dc/elements/1.1/' dc:title='IMGMOD-CANARY-XMP'/>"
"</rdf:RDF></x:xmpmeta><?xpacket end='w'?>";
const size_t jb_xmp_packet_len = sizeof(jb_xmp_packet) - 1;

/* Photoshop 3.0 resource block with one IPTC record (caption). */
size_t
jb_build_app13(uint8_t *buf)
{
	static const char caption[] = "IMGMOD-CANARY-IPTC";
	size_t		clen = sizeof(caption) - 1;
	size_t		iptc_len = 5 + clen;
	uint8_t    *p = buf;

	memcpy(p, "Photoshop 3.0\0", 14);
	p += 14;
	memcpy(p, "8BIM\x04\x04\x00\x00", 8);
	p += 8;
	jb_put32(p, true, (uint32_t) iptc_len);
	p += 4;
	p[0] = 0x1C;
	p[1] = 2;
	p[2] = 120;
	jb_put16(p + 3, true, (unsigned) clen);
	memcpy(p + 5, caption, clen);
	p += iptc_len;
	if (iptc_len & 1)
		*p++ = 0;
	return (size_t) (p - buf);
}

/* APP2 payload: "ICC_PROFILE\0" 1 1 + lcms2's built-in sRGB profile. */
size_t
jb_build_icc_app2(uint8_t *buf, size_t cap, size_t *profile_len)
{
	cmsHPROFILE p = cmsCreate_sRGBProfile();
	cmsUInt32Number n = 0;

	*profile_len = 0;
	if (p == NULL)
		return 0;
	if (!cmsSaveProfileToMem(p, NULL, &n) || n + 14 > cap ||
		!cmsSaveProfileToMem(p, buf + 14, &n))
	{
		cmsCloseProfile(p);
		return 0;
	}
	cmsCloseProfile(p);
	memcpy(buf, "ICC_PROFILE\0\1\1", 14);
	*profile_len = n;
	return 14 + n;
}

/* ------------------------------------------------ looking at the result */

img_status
jb_normalise(const uint8_t *data, size_t len, img_normalised *out, img_error *err)
{
	img_limits	lim;
	img_normalise_options opt;

	img_limits_default(&lim);
	opt.master_quality = 90;
	opt.background[0] = opt.background[1] = opt.background[2] = 255;
	return img_normalise(data, len, &lim, &opt, out, err);
}

img_status
jb_load(const uint8_t *data, size_t len, uint32_t min_w, uint32_t min_h, img_raster *out,
		img_info *info, img_error *err)
{
	return jb_load_threads(data, len, min_w, min_h, 1, out, info, err);
}

img_status
jb_load_threads(const uint8_t *data, size_t len, uint32_t min_w, uint32_t min_h,
				unsigned threads, img_raster *out, img_info *info, img_error *err)
{
	img_limits	lim;
	img_load_options opt;

	img_limits_default(&lim);
	img_load_options_default(&opt);
	opt.min_width = min_w;
	opt.min_height = min_h;
	opt.threads = threads;
	return img_load(data, len, &lim, &opt, out, info, err);
}

bool
jb_memfind(const uint8_t *data, size_t len, const void *needle, size_t n)
{
	const uint8_t *nd = needle;

	for (size_t i = 0; i + n <= len; i++)
		if ((n == 0 || data[i] == nd[0]) && memcmp(data + i, nd, n) == 0)
			return true;
	return false;
}

void
jb_mean_rgb(const img_raster *r, uint32_t x0, uint32_t y0, uint32_t w, uint32_t h, double m[3])
{
	double		s[3] = {0, 0, 0};

	for (uint32_t y = y0; y < y0 + h; y++)
		for (uint32_t x = x0; x < x0 + w; x++)
			for (int c = 0; c < 3; c++)
				s[c] += r->pixels[y * r->stride + x * r->channels + c];
	for (int c = 0; c < 3; c++)
		m[c] = s[c] / ((double) w * h);
}

double
jb_mean_abs_diff(const img_raster *a, const img_raster *b)
{
	double		s = 0;

	if (a->width != b->width || a->height != b->height)
		return 1e9;
	for (uint32_t y = 0; y < a->height; y++)
		for (size_t i = 0; i < (size_t) a->width * 3; i++)
			s += abs(a->pixels[y * a->stride + i] - b->pixels[y * b->stride + i]);
	return s / ((double) a->width * a->height * 3);
}

/*
 * Walk a JPEG's markers.  Returns true when the structure is sound and
 * the file ends exactly with its EOI; counts[] receives how often each
 * marker occurs (segments between scans included).
 */
bool
jb_walk_markers(const uint8_t *d, size_t len, int counts[256])
{
	size_t		pos = 2;

	memset(counts, 0, sizeof(int) * 256);
	if (len < 4 || d[0] != 0xFF || d[1] != 0xD8)
		return false;
	counts[0xD8]++;
	while (pos + 1 < len)
	{
		uint8_t		m;
		size_t		l;

		if (d[pos] != 0xFF)
			return false;
		while (pos < len && d[pos] == 0xFF)
			pos++;
		if (pos >= len)
			return false;
		m = d[pos++];
		counts[m]++;
		if (m == 0xD9)
			return pos == len;
		if (pos + 2 > len)
			return false;
		l = ((size_t) d[pos] << 8) | d[pos + 1];
		if (l < 2 || pos + l > len)
			return false;
		pos += l;
		if (m == 0xDA)
		{
			/* entropy-coded data up to the next marker that is not RSTn or stuffing */
			while (pos + 1 < len)
			{
				if (d[pos] == 0xFF && d[pos + 1] != 0x00 &&
					!(d[pos + 1] >= 0xD0 && d[pos + 1] <= 0xD7))
					break;
				pos++;
			}
		}
	}
	return false;
}
