// The only code that writes to the API server: server-side apply with one field manager,
// create-if-absent, prune, status and spec patches, Events.
import { randomBytes } from 'node:crypto';
import type { KubeClient } from './client.ts';
import { OperatorError } from '../errors.ts';
import { FIELD_MANAGER } from '../desired/meta.ts';
import type { EventSpec, KubeObject } from '../desired/types.ts';
import { collectionPath, objectPath } from './resources.ts';

const ns = (o: KubeObject) => o.metadata?.namespace ?? '';
const name = (o: KubeObject) => o.metadata?.name ?? '';

export class Writer {
  readonly #client: KubeClient;
  constructor(client: KubeClient) {
    this.#client = client;
  }

  async apply(object: KubeObject): Promise<void> {
    await this.#client.request('PATCH', objectPath(object.kind ?? '', ns(object), name(object)), {
      verb: 'apply',
      discard: true,
      body: object,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager: FIELD_MANAGER, force: true },
    });
  }

  /** Creates the object unless it exists (generated secrets are never overwritten). */
  async createIfAbsent(object: KubeObject): Promise<boolean> {
    try {
      await this.#client.request('POST', collectionPath(object.kind ?? '', ns(object)), {
        verb: 'create',
        discard: true,
        body: object,
        query: { fieldManager: FIELD_MANAGER },
      });
      return true;
    } catch (error) {
      if (error instanceof OperatorError && error.status === 409) return false;
      throw error;
    }
  }

  /** Deletes the object; `Orphan` leaves its dependents (a StatefulSet's pods) in place. */
  async delete(
    kind: string,
    namespace: string,
    objectName: string,
    propagationPolicy: 'Background' | 'Orphan' = 'Background',
  ): Promise<void> {
    try {
      await this.#client.request('DELETE', objectPath(kind, namespace, objectName), {
        verb: 'delete',
        discard: true,
        body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy },
      });
    } catch (error) {
      if (!(error instanceof OperatorError && error.status === 404)) throw error;
    }
  }

  async patchStatus(
    kind: string,
    namespace: string,
    objectName: string,
    status: Record<string, unknown>,
  ): Promise<void> {
    await this.#client.request('PATCH', `${objectPath(kind, namespace, objectName)}/status`, {
      verb: 'patch',
      discard: true,
      body: { status },
      contentType: 'application/merge-patch+json',
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  async patchSpec(
    kind: string,
    namespace: string,
    objectName: string,
    spec: Record<string, unknown>,
    annotations?: Record<string, string | null>,
  ): Promise<void> {
    // One merge patch, so spec and annotations change together or not at all.
    await this.#client.request('PATCH', objectPath(kind, namespace, objectName), {
      verb: 'patch',
      discard: true,
      body: annotations ? { metadata: { annotations }, spec } : { spec },
      contentType: 'application/merge-patch+json',
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  /**
   * Adds or removes one finalizer with a JSON patch that tests the list as observed (`current`): a
   * list that changed under us fails with 422 and the pass is retried, so another controller's
   * finalizer is never dropped.
   */
  async finalizer(
    kind: string,
    namespace: string,
    objectName: string,
    change: { add: string } | { remove: string },
    current: readonly string[],
  ): Promise<void> {
    const path = '/metadata/finalizers';
    const operations =
      'add' in change
        ? current.length === 0
          ? [{ op: 'add', path, value: [change.add] }]
          : [
              { op: 'test', path, value: current },
              { op: 'add', path: `${path}/-`, value: change.add },
            ]
        : [
            { op: 'test', path: `${path}/${current.indexOf(change.remove)}`, value: change.remove },
            { op: 'remove', path: `${path}/${current.indexOf(change.remove)}` },
          ];
    await this.#client.request('PATCH', objectPath(kind, namespace, objectName), {
      verb: 'patch',
      discard: true,
      body: operations,
      contentType: 'application/json-patch+json',
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  async event(e: EventSpec, now: Date): Promise<void> {
    const time = now.toISOString();
    await this.#client.request('POST', collectionPath('Event', e.regarding.namespace), {
      verb: 'create',
      discard: true,
      body: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: {
          name: `${e.regarding.name}.${randomBytes(8).toString('hex')}`,
          namespace: e.regarding.namespace,
        },
        involvedObject: e.regarding,
        reason: e.reason,
        message: e.message.slice(0, 1024),
        type: e.type,
        source: { component: FIELD_MANAGER },
        reportingComponent: FIELD_MANAGER,
        reportingInstance: FIELD_MANAGER,
        firstTimestamp: time,
        lastTimestamp: time,
        count: 1,
      },
    });
  }
}
