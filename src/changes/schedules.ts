/**
 * Keeping the store's poll schedules in step with instances' configurations: an instance with
 * `event.notification.enabled: true` has a schedule (its interval and watch), any other has
 * none. Called when an instance is created, reconfigured or deleted (InstanceService.onStored),
 * and once at start (`reconcile`), which repairs what a crash between storing an instance and
 * its schedule left behind.
 *
 * Owns: the mapping configuration → schedule. May import: store/, instances/ (clear
 * configuration), changes/settings.ts, config.ts.
 */
import type { Config } from '../config.js';
import type { InstanceService } from '../instances/service.js';
import type { Instance, Store } from '../store/store.js';
import { parseChangeSettings, watchKey } from './settings.js';

export class ChangeSchedules {
  constructor(
    private readonly store: Store,
    private readonly instances: InstanceService,
    private readonly config: Config,
    /** Tells the node's poller to look at the schedules again. */
    private readonly wakePoller: () => void,
  ) {}

  /** Creates, updates or removes the schedule of one instance (`instance` null: deleted). */
  async sync(instance: Instance | null, id: number): Promise<void> {
    await this.apply(instance, id);
    this.wakePoller();
  }

  /** Brings every schedule in step with its instance. */
  async reconcile(): Promise<void> {
    const scheduled = new Set(await this.store.scheduledInstances());
    for (const instance of await this.store.allInstances()) {
      await this.apply(instance, instance.id, scheduled);
      scheduled.delete(instance.id);
    }
    for (const id of scheduled) await this.store.unschedulePolls(id); // instances deleted meanwhile
    this.wakePoller();
  }

  /** `scheduled`: the instances known to have a schedule (others need no unscheduling). */
  private async apply(instance: Instance | null, id: number, scheduled?: Set<number>): Promise<void> {
    const unschedule = () => (scheduled && !scheduled.has(id) ? Promise.resolve() : this.store.unschedulePolls(id));
    if (!instance) return unschedule();
    let settings;
    try {
      settings = parseChangeSettings(this.instances.unseal(instance), this.config.pollerMinIntervalMs, this.config.maxPathLength);
    } catch {
      settings = null; // stored before these keys were checked: not watched until it is fixed
    }
    if (!settings?.enabled || !settings.callbackUrl) return unschedule();
    await this.store.schedulePolls({
      instanceId: instance.id,
      organizationId: instance.organizationId,
      intervalMs: settings.intervalMs,
      watch: watchKey(settings.watch),
    });
  }
}
