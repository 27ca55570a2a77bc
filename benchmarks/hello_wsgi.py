"""The smallest WSGI app: 200 "ok" for every request. Served by gunicorn with
gunicorn.conf.py, it measures the server's own CPU per request (the floor
under every page), for throughput.py."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
