import { useCallback, useEffect, useMemo, useState, version, type FormEvent } from "react";
import { useSelector } from "react-redux";
import { LoadingSpinner, StatusProvider } from "@insighthub/status-react";
import { selectConnection, useStatusUpdates } from "@insighthub/status-react/redux";
import { Api, ApiError } from "./api";
import { WorkspaceDetail } from "./pages/WorkspaceDetail";
import { WorkspaceList } from "./pages/WorkspaceList";
import { Link, usePath } from "./router";

const TOKEN_KEY = "insighthub-token";

// A token in the address's fragment (never sent to a server) signs in, and leaves at once.
function takeTokenFromAddress(): string | null {
  const match = /(?:^|&)token=([^&]+)/.exec(window.location.hash.slice(1));
  if (!match?.[1]) return null;
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  return decodeURIComponent(match[1]);
}

export function App() {
  const [token, setToken] = useState<string | null>(
    () => takeTokenFromAddress() ?? sessionStorage.getItem(TOKEN_KEY),
  );
  const [user, setUser] = useState<number | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);
  const api = useMemo(() => (token ? new Api(token) : null), [token]);

  const signOut = useCallback((reason: string | null) => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken(null);
    setUser(null);
    setRefusal(reason);
  }, []);

  useEffect(() => {
    if (!api || !token) return;
    let current = true;
    api.session().then(
      (session) => {
        if (!current) return;
        sessionStorage.setItem(TOKEN_KEY, token);
        setUser(session.user_id);
      },
      (error: unknown) => {
        if (current && error instanceof ApiError && error.status === 401) signOut(error.message);
      },
    );
    return () => {
      current = false;
    };
  }, [api, token, signOut]);

  const verifyToken = useCallback(async () => {
    try {
      await api?.session();
      return true;
    } catch (error) {
      return !(error instanceof ApiError && error.status === 401);
    }
  }, [api]);
  const options = useMemo(() => ({ verifyToken }), [verifyToken]);

  if (!api || !token) return <SignIn refusal={refusal} onToken={setToken} />;
  if (user === null) return <LoadingSpinner size="lg" label="Signing in" />;
  return (
    <StatusProvider token={token} options={options}>
      <Shell api={api} user={user} onRefused={() => signOut("the server no longer accepts this token")} />
    </StatusProvider>
  );
}

function Shell({ api, user, onRefused }: { api: Api; user: number; onRefused: () => void }) {
  // The seed's hook: every document_status / workspace_status goes to the Redux store.
  useStatusUpdates();
  const connection = useSelector(selectConnection);
  const path = usePath();
  useEffect(() => {
    if (connection === "unauthorized") onRefused();
  }, [connection, onRefused]);
  const detail = /^\/workspaces\/(\d+)$/.exec(path);
  return (
    <>
      <header className="bar" data-react-version={version}>
        <h1>
          <Link to="/">InsightHub</Link>
        </h1>
        <span id="user">User {user}</span>
        <span id="connection" className={`connection connection--${connection}`} data-state={connection}>
          {connection}
        </span>
      </header>
      <main>
        {detail?.[1] ? (
          <WorkspaceDetail api={api} workspaceId={Number(detail[1])} />
        ) : (
          <WorkspaceList api={api} />
        )}
      </main>
    </>
  );
}

function SignIn({ refusal, onToken }: { refusal: string | null; onToken: (token: string) => void }) {
  const [draft, setDraft] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (draft.trim()) onToken(draft.trim());
  };
  return (
    <main>
      <form id="sign-in" className="card" onSubmit={submit}>
        <h1>Sign in</h1>
        <label htmlFor="token-input">Token (from <code>insighthub token --user 1</code>)</label>
        <input id="token-input" value={draft} onChange={(event) => setDraft(event.target.value)} />
        {refusal ? (
          <p id="sign-in-error" role="alert">
            {refusal}
          </p>
        ) : null}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}
