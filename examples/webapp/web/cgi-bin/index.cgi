#!/bin/sh
# The front end: busybox httpd runs this for `/` (there is no index.html) and
# passes the request on to the api by its service name.
echo "Content-Type: text/plain"
echo
exec wget -q -O- "http://api:8000/cgi-bin/page.cgi"
