/** Tags of images and connectors through the Lambda tag routes: TagResource, UntagResource, ListTags. */
import type { ListTagsCommandInput, TagResourceCommandInput, UntagResourceCommandInput } from '@aws-sdk/client-lambda-microvms';
import { mvErr } from './errors';
import { Image } from './records';
import type { MicrovmsService } from './service';
import type { Checked } from './util';
import { Result } from './util';

export class TagsApi {
  constructor(private readonly svc: MicrovmsService) {}

  private tagTarget(resource: string): { tags: Record<string, string> } {
    const m = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):(microvm-image|network-connector):([a-zA-Z0-9-_]+)$/.exec(resource);
    if (!m) throw mvErr.invalidParameter(`Resource ${resource} is not a taggable MicroVM image or network connector ARN.`);
    if (m[1] !== this.svc.region || m[2] !== this.svc.account) throw mvErr.notFound(`Resource not found: ${resource}`, resource, null);
    if (m[3] === 'microvm-image') {
      const img = this.svc.images.get(m[4]);
      if (!img) throw mvErr.notFound(`MicroVMImage not found for MicroVMImageID: ${resource}`, resource, 'MicrovmImage');
      return img;
    }
    const c = this.svc.connectors.get(m[4]);
    if (!c) throw mvErr.notFound(`Network connector not found for: ${resource}`, resource, 'NetworkConnector');
    return c;
  }

  listTags(input: Checked<ListTagsCommandInput, 'Resource'>): Result {
    return { body: { Tags: { ...this.tagTarget(input.Resource).tags } } };
  }

  tagResource(input: Checked<TagResourceCommandInput, 'Resource' | 'Tags'>): Result {
    const target = this.tagTarget(input.Resource);
    const merged = { ...target.tags, ...input.Tags };
    if (Object.keys(merged).length > 50) throw mvErr.invalidParameter('A resource can have at most 50 tags.');
    for (const k of Object.keys(input.Tags)) if (k.toLowerCase().startsWith('aws:')) throw mvErr.invalidParameter(`Tag keys starting with 'aws:' are reserved: ${k}`);
    target.tags = merged;
    if ('updatedAt' in target) (target as Image).updatedAt = Math.max((target as Image).updatedAt, this.svc.now());
    return { status: 204 };
  }

  untagResource(input: Checked<UntagResourceCommandInput, 'Resource' | 'TagKeys'>): Result {
    const target = this.tagTarget(input.Resource);
    for (const k of input.TagKeys as string[]) delete target.tags[k];
    return { status: 204 };
  }
}
