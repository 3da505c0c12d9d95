/**
 * Where a profiled proxy's CPU went, from V8's `.cpuprofile` (node --cpu-prof) and from
 * `perf report`: self time grouped into a few categories, and the top functions. Pure: the
 * runner (profile-tls.ts) reads the files and prints what these return.
 */

/** The parts of a .cpuprofile this reads. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber?: number };
  }[];
  samples: number[];
  /** Microseconds before each sample. */
  timeDeltas: number[];
}

/** A share of the profiled CPU time. */
export interface Share {
  name: string;
  /** Milliseconds (cpuprofile) or samples (perf); `percent` is the comparable figure. */
  amount: number;
  percent: number;
}

export interface ProfileSummary {
  /** Milliseconds the process was sampled on CPU: idle samples left out. */
  busyMs: number;
  categories: Share[];
  top: Share[];
}

/**
 * The category of a V8 profile frame. `(program)` is time in native code with no JavaScript
 * on the stack: for a TLS proxy, mostly OpenSSL driven by TLSWrap from libuv's callbacks, plus
 * libuv and syscalls, which only perf can split further.
 */
export function frameCategory(functionName: string, url: string): string | null {
  if (functionName === '(idle)' || functionName === '(root)') return null;
  if (functionName === '(garbage collector)') return 'V8 garbage collector';
  if (functionName === '(program)') return 'native, no JS on the stack (OpenSSL, libuv, kernel)';
  if (url === '') return 'native functions called from JS';
  if (url.startsWith('node:')) {
    return /tls/.test(url) ? 'Node JS: tls' : 'Node JS: net, streams, events, timers';
  }
  if (url.includes('/node_modules/')) return 'dependencies (node_modules)';
  return 'switchyard';
}

/** Self time by category and the `topN` functions with the most self time. */
export function summarizeCpuProfile(p: CpuProfile, topN = 15): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  let busyUs = 0;
  p.samples.forEach((id, i) => {
    const node = byId.get(id);
    const dt = p.timeDeltas[i] ?? 0;
    if (!node || dt <= 0) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const category = frameCategory(functionName, url);
    if (category === null) return;
    busyUs += dt;
    categories.set(category, (categories.get(category) ?? 0) + dt);
    const where = url
      ? ` ${url.replace(/^.*\/(dist|src|node_modules)\//, '$1/')}:${(lineNumber ?? 0) + 1}`
      : '';
    const key = `${functionName || '(anonymous)'}${where}`;
    functions.set(key, (functions.get(key) ?? 0) + dt);
  });
  const shares = (m: Map<string, number>) =>
    [...m]
      .map(([name, us]) => ({ name, amount: us / 1000, percent: busyUs ? (100 * us) / busyUs : 0 }))
      .sort((a, b) => b.amount - a.amount);
  return {
    busyMs: busyUs / 1000,
    categories: shares(categories),
    top: shares(functions).slice(0, topN),
  };
}

/** OpenSSL's symbol prefixes: libcrypto and libssl are linked into the node binary. */
const OPENSSL =
  /^(EVP_|evp_|ossl_|OSSL_|ecp_|EC_|ec_|ECDSA|ecdsa|bn_|BN_|sha\d|SHA\d|aes|AES|gcm_|x25519|X25519|RSA|rsa_|ASN1|asn1|X509|x509|SSL_|ssl\d?_|tls\d*_|dtls|CRYPTO_|OPENSSL_|openssl_|ERR_|err_|HMAC|PEM|BIO_|bio_|OBJ_|d2i_|i2d_|ChaCha|chacha|poly1305|Poly1305|__ecp_|mul_mont|fe51_|fe_|x448|OPENSSL|ENGINE|DH_|ECX|KDF|kdf_|HKDF|PKCS|pkcs|RAND_|rand_|drbg|lh_|OPENSSL_sk|sk_|tls_|WPACKET|PACKET|ssl3_|SHA256|SHA512|sha256|sha512|DER|der_|encoder|decoder|ERR|CONF|conf_|property|ossl)/;

/**
 * The category of a perf sample from its shared object and symbol (perf report's `dso,sym`).
 * Symbols of the node binary are told apart by name: OpenSSL by its prefixes, V8 and Node's C++
 * by namespace, libuv by `uv_`.
 */
export function perfCategory(dso: string, symbol: string, kernel: boolean): string {
  if (kernel || dso.startsWith('[kernel')) return 'kernel';
  if (/^(perf-\d+\.map|\[JIT\]|\[unknown\])/.test(dso) || symbol.startsWith('0x')) {
    return 'JIT code (JavaScript, V8 builtins)';
  }
  if (/libc[.-]|libpthread|ld-linux/.test(dso)) return 'libc';
  if (/libssl|libcrypto/.test(dso) || OPENSSL.test(symbol)) return 'OpenSSL';
  if (/^(uv_|uv__)/.test(symbol)) return 'libuv';
  if (/^node::/.test(symbol)) return 'Node C++ (TLSWrap, stream and handle glue)';
  if (/^(v8::|Builtins_|v8_|cppgc::|heap::|Heap::)/.test(symbol) || /^v8/.test(dso)) {
    return 'V8 (runtime, builtins, GC)';
  }
  return 'other';
}

/**
 * Parses `perf report --stdio --no-children --sort dso,sym` lines
 * ("  12.34%  node  [.] EVP_DigestSign") into categories and the top symbols, in percent.
 */
export function summarizePerfReport(
  text: string,
  topN = 20,
): { categories: Share[]; top: Share[] } {
  const categories = new Map<string, number>();
  const top: Share[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+)%\s+(\S+)\s+\[([.k])\]\s+(.*?)\s*$/.exec(line);
    if (!m) continue;
    const percent = Number(m[1]);
    const dso = m[2] as string;
    const symbol = m[4] as string;
    const category = perfCategory(dso, symbol, m[3] === 'k');
    categories.set(category, (categories.get(category) ?? 0) + percent);
    top.push({ name: `${symbol} (${dso}, ${category})`, amount: percent, percent });
  }
  const cats = [...categories]
    .map(([name, percent]) => ({ name, amount: percent, percent }))
    .sort((a, b) => b.percent - a.percent);
  top.sort((a, b) => b.percent - a.percent);
  return { categories: cats, top: top.slice(0, topN) };
}

/** A share table as Markdown lines. */
export function shareTable(title: string, shares: Share[]): string[] {
  const lines = [`| ${title} | share |`, '| --- | ---: |'];
  for (const s of shares)
    lines.push(`| ${s.name.replaceAll('|', '\\|')} | ${s.percent.toFixed(1)} % |`);
  return lines;
}
