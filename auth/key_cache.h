// scitokens-cpp looks an issuer's keys up in an SQLite key cache under $XDG_CACHE_HOME,
// and when they are missing or stale fetches them itself, over the network, on the calling
// thread. The gateway keeps it off that path: the cache lives in a directory the gateway
// makes for itself, and the gateway writes every configured issuer's keys there (from
// jwks_file, or fetched from jwks_url on the control thread), fresh for longer than any
// refresh interval, so scitokens-cpp only ever reads them.
#pragma once

#include <mutex>
#include <string>

namespace infergate::auth {

// The cache directory: a private one (mode 0700) made at the first call under $TMPDIR (or
// /tmp), named to scitokens-cpp through XDG_CACHE_HOME, and removed at exit. The first call
// sets an environment variable: make it before any other thread starts.
const std::string& key_cache_dir();

// Held around every use of the cache, by the gateway and by scitokens-cpp: scitokens-cpp
// 0.7 reads it without waiting out a busy database, and takes a read that fails for keys
// that are missing, which it then goes to fetch over the network (on the calling
// thread). One at a time, no read ever fails that way. Checks are one per new token.
std::mutex& key_cache_mutex();

// Makes `jwks` (a JWKS document) the keys of `issuer` in the cache. False, with `error`,
// if the cache cannot be written.
bool store_issuer_keys(const std::string& issuer, const std::string& jwks, std::string& error);

}  // namespace infergate::auth
