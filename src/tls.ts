/**
 * TLS material as the engines take it: the files of a config already read and checked
 * (src/config/tls-files.ts), so an engine never touches the file system and a reload that cannot
 * read a file fails before anything changes. Types only; a leaf module, so the config layer
 * that makes these and the engine layer that uses them need not import each other.
 */

/** One certificate of a terminating frontend. */
export interface CertificateMaterial {
  /** PEM: the certificate, then any intermediates. */
  readonly cert: string;
  /** PEM private key. */
  readonly key: string;
  /** DNS names of its SANs (or its CN when it has none), lower case; `*.x` for wildcards. */
  readonly names: readonly string[];
  /** Expiry, in ms since the epoch. */
  readonly notAfter: number;
  /** Serial number, hex (for logs and tests). */
  readonly serial: string;
  /** The certificate file, as the config names it (the expiry gauge's `cert` label). */
  readonly file: string;
}

/** Terminating TLS on a listener. */
export interface TlsServerMaterial {
  /** Chosen by SNI: exact name, then wildcard; the first is the default. Never empty. */
  readonly certificates: readonly CertificateMaterial[];
  /** ALPN protocols offered, in preference order; empty: no ALPN. */
  readonly alpn: readonly string[];
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** PEM CA bundle: client certificates are required and verified against it; null: none asked. */
  readonly clientCa: string | null;
  /** 0 = no handshake timeout. */
  readonly handshakeTimeoutMs: number;
}

/** Originating TLS to a server (connects and health checks). */
export interface TlsClientMaterial {
  /** PEM CA bundle; null: the runtime's default roots. */
  readonly ca: string | null;
  /** SNI and the name verified; null: the host connected to. */
  readonly servername: string | null;
  /** Verify the server's certificate (chain and name). */
  readonly verify: boolean;
  /** PEM client certificate and key, or null. */
  readonly cert: string | null;
  readonly key: string | null;
}

/** What a TLS connection negotiated: the route hook, the access log and the live table show it. */
export interface TlsInfo {
  /** The server name the client asked for (SNI), or null. */
  readonly sni: string | null;
  /** The ALPN protocol agreed, or null. */
  readonly alpn: string | null;
  /** `TLSv1.3`, `TLSv1.2`, ... */
  readonly version: string | null;
  /** OpenSSL's cipher name, e.g. `TLS_AES_256_GCM_SHA384`. */
  readonly cipher: string | null;
}
