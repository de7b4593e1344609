"""The `byteor-cloud` command line."""
