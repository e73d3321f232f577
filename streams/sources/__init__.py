"""Where labelled data and events come from: MovieLens-100k, its replay as an ad stream,
users' files (`aimass train`) and databases (`aimass backfill`)."""
