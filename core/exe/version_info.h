// What this build of firehub is (`firehub --version`): the project's version, the git commit it
// was configured from, the build type, and the versions of the libraries it runs on.
#pragma once

#include <string>

namespace firehub::cli {

extern const char* kFirehubVersion;
extern const char* kFirehubCommit;     // "unknown" outside a git checkout
extern const char* kFirehubBuildType;  // Release, Debug, ...

// Several lines: firehub <version> (commit <commit>, <build type>), then one per library.
std::string versionText();

}  // namespace firehub::cli
