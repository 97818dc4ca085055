"""The GraphiQL page served at GET /graphql to browsers.

The page loads GraphiQL, React and graphql-ws from a public CDN in the user's browser (the
server ships no JavaScript). Put the API key in GraphiQL's Headers tab as
{"X-API-Key": "..."}: HTTP requests send those headers, and subscriptions pass them as the
graphql-transport-ws connection_init payload.
"""

GRAPHIQL_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>mobile-analytics GraphiQL</title>
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3.8.3/graphiql.min.css">
</head>
<body>
  <div id="graphiql">Loading GraphiQL&hellip;</div>
  <script crossorigin src="https://unpkg.com/react@18.3.1/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphql-ws@5.16.0/umd/graphql-ws.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3.8.3/graphiql.min.js"></script>
  <script>
    const url = new URL("/graphql", window.location.href);
    const wsUrl = url.href.replace(/^http/, "ws");
    function savedHeaders() {
      try { return JSON.parse(localStorage.getItem("graphiql:headers") || "{}"); } catch (e) { return {}; }
    }
    const fetcher = GraphiQL.createFetcher({
      url: url.href,
      wsClient: graphqlWs.createClient({ url: wsUrl, lazy: true, connectionParams: savedHeaders }),
    });
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {
        fetcher,
        isHeadersEditorEnabled: true,
        defaultHeaders: '{"X-API-Key": ""}',
        defaultQuery: 'mutation {\\n  trackEvents(appId: "demo", events: [{ type: "page_view", path: "/home" }]) {\\n    success eventCount\\n  }\\n}\\n',
      }));
  </script>
</body>
</html>
"""
