#!/bin/sh
# The app: the schema version the migration wrote to the database, and a
# visit counter kept in the cache.
echo "Content-Type: text/plain"
echo
echo "schema $(redis-cli -h db get schema_version), visit $(redis-cli -h cache incr visits)"
