"""The smallest WSGI app: 200 "ok" for every request. Served with the same
server settings as the app, it measures the server's own CPU per request
(the floor under every page), for the "hello" page of the ab benchmark."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
