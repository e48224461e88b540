/*
 * tern.h - the one header a tern application includes.
 *
 * tern is a C framework for JSON/REST backends: an HTTP/1.1 server with one
 * event loop per worker, handlers in coroutines, a router, middleware and
 * JSON/problem+json responses.  See README.md and docs/.
 */
#ifndef TERN_H
#define TERN_H

#define TERN_VERSION_MAJOR 0
#define TERN_VERSION_MINOR 1
#define TERN_VERSION_PATCH 0
#define TERN_VERSION       "0.1.0"

#include "tern/body.h"
#include "tern/core.h"
#include "tern/db.h"
#include "tern/http.h"
#include "tern/json.h"
#include "tern/loop.h"
#include "tern/valid.h"

#endif /* TERN_H */
