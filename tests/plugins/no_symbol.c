/* A shared library that is not a firehub connector: no descriptor symbol. */
__attribute__((visibility("default"))) int some_other_library_function(void) { return 42; }
