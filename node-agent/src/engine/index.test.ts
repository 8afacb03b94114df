import { describe, expect, it } from 'vitest';
import { selectEngines } from './index';

describe('selectEngines', () => {
  it('auto (the default): node-datachannel answers, werift is there for clients that ask', () => {
    expect(selectEngines('auto').map((e) => e.name)).toEqual(['node-datachannel', 'werift']);
    expect(selectEngines('').map((e) => e.name)).toEqual(['node-datachannel', 'werift']);
  });

  it('a named engine is the only one', () => {
    expect(selectEngines('werift').map((e) => e.name)).toEqual(['werift']);
    expect(selectEngines('node-datachannel').map((e) => e.name)).toEqual(['node-datachannel']);
  });

  it('refuses an unknown engine, naming the choices', () => {
    expect(() => selectEngines('libwebrtc')).toThrow(
      'unknown engine "libwebrtc": use one of auto, werift, node-datachannel',
    );
  });
});
