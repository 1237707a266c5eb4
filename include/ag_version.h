/* ag_version.h - build identity reported by --version, /api/v1/status/buildinfo and
 * augur_build_info. The Makefile passes AG_REVISION, AG_BRANCH and AG_BUILD_DATE. */
#ifndef AG_VERSION_H
#define AG_VERSION_H

#define AG_VERSION "0.1.0"
#ifndef AG_REVISION
#define AG_REVISION "unknown"
#endif
#ifndef AG_BRANCH
#define AG_BRANCH "unknown"
#endif
#ifndef AG_BUILD_DATE
#define AG_BUILD_DATE "unknown"
#endif

#endif
