"""gcp-storage-emulator (PyPI) as the tests run it: `python3 gcs_emulator.py start ARGS...`.

The emulator's XML API (`PUT`/`GET /<bucket>/<object>`, what object_store's GCS store uses)
answers without the `ETag` and `Last-Modified` headers Cloud Storage sends and object_store
requires. This launcher adds them to those two routes (the object's MD5 and the time of the
answer), then runs the emulator's own command line unchanged."""
import base64
import email.utils
import sys

from gcp_storage_emulator import server
from gcp_storage_emulator.__main__ import main
from gcp_storage_emulator.handlers import objects

XML_ROUTES = (objects.xml_upload, objects.download)


def with_object_headers(handler):
    def wrapped(request, response, storage, *args, **kwargs):
        handler(request, response, storage, *args, **kwargs)
        try:
            obj = storage.get_file_obj(
                request.params["bucket_name"], request.params["object_id"]
            )
        except Exception:  # no such object: the handler answered 404
            return
        md5 = base64.b64decode(obj.get("md5Hash", "")).hex()
        response["ETag"] = '"{}"'.format(md5)
        response["Last-Modified"] = email.utils.formatdate(usegmt=True)

    return wrapped


server.HANDLERS = tuple(
    (
        regex,
        {
            method: with_object_headers(h) if h in XML_ROUTES else h
            for method, h in handlers.items()
        },
    )
    for regex, handlers in server.HANDLERS
)

if __name__ == "__main__":
    sys.exit(main())
