"""Video sources for ingestion: Wikimedia Commons, Pixabay and the bundled samples.

- `models`    `Candidate` (one offered video, with its licence and attribution) and `SearchResult`
- `wikimedia` Commons Action API client (search, licence filter, transcode choice, maxlag etiquette)
- `pixabay`   Pixabay API client (key from Secrets Manager, 24 h cache, rate limits)
- `samples`   the sample videos bundled at set-up, as offline candidates
- `planning`  batch planning (distribution, de-duplication, limits) and campaigns in SSM
- `ingest`    streaming a candidate into the lake's raw prefix, verified and attributed
"""
