/**
 * One provider call: POST a JSON body, read the reply as JSON when it is JSON. The caller
 * judges the status and the shape; a body that is not JSON comes back as undefined.
 */
export async function postJson<T>(url: string, headers: Record<string, string>, body: unknown, signal: AbortSignal): Promise<{ status: number; ok: boolean; data: T | undefined }> {
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal });
  const raw = await res.text();
  let data: T | undefined;
  try {
    data = JSON.parse(raw) as T;
  } catch {
    data = undefined;
  }
  return { status: res.status, ok: res.ok, data };
}
