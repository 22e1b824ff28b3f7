"""maskwatch on the web: a REST API (`maskwatch.web.api`, FastAPI) and a Streamlit app (`maskwatch.web.app`).

Both share `maskwatch.web.uploads` (what an upload may be: size limit, content sniffing), and both
are thin layers over `maskwatch.load()`; FastAPI and Streamlit are imported only by their modules.
"""
