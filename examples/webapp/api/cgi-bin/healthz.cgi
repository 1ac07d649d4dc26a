#!/bin/sh
# Healthy while both the database and the cache answer.
echo "Content-Type: text/plain"
echo
[ "$(redis-cli -h db ping)" = PONG ] && [ "$(redis-cli -h cache ping)" = PONG ] && echo ok
