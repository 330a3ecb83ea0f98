import {
  createContext,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useSyncExternalStore,
  type ReactNode,
} from "react";
import { StatusClient } from "@insighthub/status-client";
import type { ConnectionState, StatusClientSettings, StatusDocument, StatusWorkspace } from "./types";

/** What the hooks need of a status client; the project's `StatusClient` is one. */
export interface StatusSource extends EventTarget {
  readonly documents: ReadonlyMap<number, unknown>;
  readonly workspaces: ReadonlyMap<number, unknown>;
  readonly state: string;
  connect(): void;
  close(): void;
  requestResync(): void;
  upsertDocument(data: object): boolean;
  upsertWorkspace(data: object): boolean;
}

export interface StatusProviderProps {
  /** The user's bearer token; a new token means a new connection. */
  token?: string;
  /** WebSocket URL (default: this page's host, `/ws`). */
  url?: string;
  /** Further options of the status client (reconnect delays, …), passed through unchanged. */
  options?: StatusClientSettings;
  /** A client made elsewhere; the provider then neither connects nor closes it. */
  client?: StatusSource;
  children?: ReactNode;
}

const StatusClientContext = createContext<StatusSource | null>(null);

/** Makes one status client for everything below it: connected while mounted. */
export function StatusProvider({ token, url, options, client, children }: StatusProviderProps) {
  const latestOptions = useRef(options);
  latestOptions.current = options;
  const owned = useMemo<StatusSource | null>(() => {
    if (client || token === undefined) return null;
    return new StatusClient({ ...latestOptions.current, token, ...(url ? { url } : {}) });
  }, [client, token, url]);
  useEffect(() => {
    if (!owned) return undefined;
    owned.connect();
    return () => owned.close();
  }, [owned]);
  const value = client ?? owned;
  return <StatusClientContext.Provider value={value}>{children}</StatusClientContext.Provider>;
}

/** The status client given, else the one of the nearest `StatusProvider`. */
export function useStatusClient(given?: StatusSource | null): StatusSource | null {
  const fromContext = useContext(StatusClientContext);
  return given ?? fromContext;
}

export interface StatusState {
  documents: StatusDocument[];
  workspaces: StatusWorkspace[];
  connection: ConnectionState;
}

const NOTHING: StatusState = { documents: [], workspaces: [], connection: "idle" };
const CHANGE_EVENTS = ["change", "state"] as const;

interface Revisions {
  revision: number;
  read: number;
  state: StatusState;
}

// Per client, a counter of its changes since it was first seen here: a change that happens
// between a render and the subscription made after it still makes the next read fresh.
const revisions = new WeakMap<StatusSource, Revisions>();

function revisionsOf(client: StatusSource): Revisions {
  let held = revisions.get(client);
  if (!held) {
    const fresh: Revisions = { revision: 0, read: -1, state: NOTHING };
    const bump = () => {
      fresh.revision += 1;
    };
    for (const type of CHANGE_EVENTS) client.addEventListener(type, bump);
    revisions.set(client, fresh);
    held = fresh;
  }
  return held;
}

function readState(client: StatusSource): StatusState {
  const held = revisionsOf(client);
  if (held.read !== held.revision) {
    held.state = {
      documents: [...client.documents.values()] as StatusDocument[],
      workspaces: [...client.workspaces.values()] as StatusWorkspace[],
      connection: client.state,
    };
    held.read = held.revision;
  }
  return held.state;
}

/**
 * The user's documents and workspaces as the status client holds them, re-rendering on every
 * change: the hook to use without Redux.
 */
export function useStatus(given?: StatusSource | null): StatusState {
  const client = useStatusClient(given);
  const subscribe = useMemo(
    () => (notify: () => void) => {
      if (!client) return () => undefined;
      revisionsOf(client);
      for (const type of CHANGE_EVENTS) client.addEventListener(type, notify);
      return () => {
        for (const type of CHANGE_EVENTS) client.removeEventListener(type, notify);
      };
    },
    [client],
  );
  const snapshot = () => (client ? readState(client) : NOTHING);
  return useSyncExternalStore(subscribe, snapshot, snapshot);
}
