vcl 4.1;
#
# imgmod's CDN edge: Varnish in front of imgmod-origin.
#
# What it caches: GET and HEAD of /i/... (variants), keyed by the path
# alone -- cookies, query strings and the Host header never split or poison
# the cache.  Everything else is refused here, so the origin only ever sees
# image requests.
#
# How it stays exact: the origin tags every response with surrogate keys
# (the xkey header), and imgmod's edge purger, driven by the events outbox,
# sends "PURGE" with an xkey-purge header naming the keys of an image that
# changed.  Purges are accepted only from the addresses in imgmod_purgers.
#
# The deployment's own part -- the backend (where the origin listens) and
# the purgers ACL -- is in imgmod-site.vcl, written by scripts/cdn.sh (or by
# hand: see edge/imgmod-site.vcl.example) and found through vcl_path.

import std;
import xkey;

include "imgmod-site.vcl";

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ imgmod_purgers) {
            return (synth(403, "purge refused: address not allowed"));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "purge needs an xkey-purge header"));
        }
        set req.http.imgmod-purged = xkey.purge(req.http.xkey-purge);
        return (synth(200, "purged " + req.http.imgmod-purged));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (synth(405, "method not allowed"));
    }
    if (req.url !~ "^/i/") {
        return (synth(404, "not found"));
    }
    # Nothing a client adds may split the cache or reach the origin.
    unset req.http.Cookie;
    unset req.http.Authorization;
    set req.url = regsub(req.url, "[?#].*$", "");
    return (hash);
}

sub vcl_hash {
    # One object per path, whatever Host the client sent.
    hash_data(req.url);
    return (lookup);
}

sub vcl_backend_response {
    # Served stale for this long while the origin is down or slow: a
    # background fetch that fails leaves the stale copy in place.
    set beresp.grace = 24h;
    if (beresp.status >= 500) {
        if (bereq.is_bgfetch) {
            return (abandon);
        }
        set beresp.ttl = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
    unset beresp.http.Set-Cookie;
    return (deliver);
}

sub vcl_backend_error {
    if (bereq.is_bgfetch) {
        return (abandon);
    }
    set beresp.http.Content-Type = "text/plain; charset=utf-8";
    set beresp.http.Retry-After = "5";
    set beresp.http.Cache-Control = "no-store";
    set beresp.body = {"the image origin is unavailable; retry shortly
"};
    return (deliver);
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    # Surrogate keys are for this edge only.
    unset resp.http.xkey;
    unset resp.http.Surrogate-Key;
    unset resp.http.Via;
    unset resp.http.X-Varnish;
    return (deliver);
}

sub vcl_synth {
    set resp.http.Content-Type = "text/plain; charset=utf-8";
    if (resp.status == 405) {
        set resp.http.Allow = "GET, HEAD";
    }
    if (resp.status == 404) {
        set resp.http.Cache-Control = "public, max-age=10";
    }
    set resp.body = resp.reason + {"
"};
    unset resp.http.X-Varnish;
    return (deliver);
}
