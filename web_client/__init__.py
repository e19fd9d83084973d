"""Static files of the browser client, served at `/`."""
