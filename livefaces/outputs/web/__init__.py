"""The web view: live tiles, camera pages, the JSON API and `POST /api/detect` (`--http`)."""
