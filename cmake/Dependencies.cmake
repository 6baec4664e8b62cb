# Every external dependency of firehub is found here, and only here. All come from Debian 12
# packages installed by ops/install-deps.sh.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

find_package(Protobuf REQUIRED)                       # libprotobuf-dev, protobuf-compiler
find_package(RocksDB REQUIRED CONFIG)                 # librocksdb-dev
find_package(OpenSSL REQUIRED)                                              # libssl-dev (HMAC)
find_package(Poco REQUIRED COMPONENTS Foundation Net NetSSL Crypto Util JSON XML Zip)   # libpoco-dev
find_package(Boost 1.74 REQUIRED COMPONENTS filesystem)   # Boost.DLL is header-only but needs it
find_package(simdjson REQUIRED CONFIG)                # libsimdjson-dev
find_package(CLI11 REQUIRED CONFIG)                   # libcli11-dev
find_package(prometheus-cpp REQUIRED CONFIG COMPONENTS core)   # prometheus-cpp-dev
find_package(absl REQUIRED CONFIG)                    # pulled in by libs2-dev

pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)    # librdkafka-dev (C API + mock)
pkg_check_modules(MOSQUITTO REQUIRED IMPORTED_TARGET libmosquitto)  # libmosquitto-dev (MQTT sources)
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)            # libre2-dev (linear-time patterns)
if(FIREHUB_JEMALLOC)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)  # libjemalloc-dev
endif()

# libs2-dev ships no CMake package: wrap it in an imported target.
find_path(S2_INCLUDE_DIR s2/s2cell_id.h REQUIRED)
find_library(S2_LIBRARY s2 REQUIRED)
add_library(firehub_s2 INTERFACE IMPORTED)
target_include_directories(firehub_s2 INTERFACE ${S2_INCLUDE_DIR})
target_link_libraries(firehub_s2 INTERFACE ${S2_LIBRARY} absl::base absl::strings)

if(FIREHUB_BUILD_TESTS)
  find_package(GTest REQUIRED CONFIG)                 # libgtest-dev, libgmock-dev
  find_package(benchmark REQUIRED CONFIG)             # libbenchmark-dev
endif()
