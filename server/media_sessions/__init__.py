"""Calls and tours: media sessions on aiortc rooms, with live subtitles and transcripts."""
