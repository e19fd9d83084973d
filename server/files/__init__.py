"""Uploaded files: what a file is (by its content), safe names, location metadata, thumbnails.

Pure functions over bytes and paths: nothing here knows Socket.IO, Redis or HTTP."""
