"""What the `facequeue` command shows: tables, progress, hints, exports, annotated pictures and the live view."""
