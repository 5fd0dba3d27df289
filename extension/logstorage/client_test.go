package logstorage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// TestClientBehavesLikeAMap drives a client and a plain map with the same
// random Get/Set/Delete/Batch calls (small segments, so rotation and
// compaction happen) and requires every read to agree, then the same state
// after reopening from disk.
func TestClientBehavesLikeAMap(t *testing.T) {
	ctx := context.Background()
	ext := newTestExtension(t, 4<<10, 1<<30)
	c := newTestClient(t, ext)
	model := map[string]string{}
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() string { return fmt.Sprintf("k%d", rng.IntN(40)) }
	value := func() []byte {
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	get := func(k string) []byte {
		v, ok := model[k]
		if !ok {
			return nil
		}
		return []byte(v)
	}
	for i := range 20000 {
		switch rng.IntN(4) {
		case 0:
			k := key()
			v, err := c.Get(ctx, k)
			require.NoError(t, err)
			require.Equal(t, get(k), v, "op %d Get %s", i, k)
		case 1:
			k, v := key(), value()
			require.NoError(t, c.Set(ctx, k, v))
			model[k] = string(v)
		case 2:
			k := key()
			require.NoError(t, c.Delete(ctx, k))
			delete(model, k)
		case 3:
			var ops []*storage.Operation
			var want [][]byte
			for range 1 + rng.IntN(5) {
				k := key()
				switch rng.IntN(3) {
				case 0:
					ops = append(ops, storage.GetOperation(k))
					want = append(want, get(k))
				case 1:
					v := value()
					ops = append(ops, storage.SetOperation(k, v))
					model[k] = string(v)
					want = append(want, v)
				case 2:
					ops = append(ops, storage.DeleteOperation(k))
					delete(model, k)
					want = append(want, nil)
				}
			}
			require.NoError(t, c.Batch(ctx, ops...))
			for j, op := range ops {
				if op.Type == storage.Get {
					require.Equal(t, want[j], op.Value, "op %d batch get %d", i, j)
				}
			}
		}
	}
	require.Equal(t, model, state(c.log))
	require.Positive(t, c.log.compactions+int64(segmentFiles(t, c.dir)[0]-1), "the test should rotate")

	require.NoError(t, c.Close(ctx))
	c = newTestClient(t, ext)
	require.Equal(t, model, state(c.log))
}

func TestBatchGetSeesEarlierOpsOfTheBatch(t *testing.T) {
	ctx := context.Background()
	c := newTestClient(t, newTestExtension(t, 4<<10, 1<<20))
	require.NoError(t, c.Set(ctx, "a", []byte("old")))
	before, afterSet, afterDelete, missing := storage.GetOperation("a"), storage.GetOperation("a"), storage.GetOperation("a"), storage.GetOperation("zzz")
	missing.Value = []byte("stale")
	require.NoError(t, c.Batch(ctx, before, storage.SetOperation("a", []byte("new")), afterSet,
		storage.DeleteOperation("a"), afterDelete, missing))
	assert.Equal(t, []byte("old"), before.Value)
	assert.Equal(t, []byte("new"), afterSet.Value)
	assert.Nil(t, afterDelete.Value)
	assert.Nil(t, missing.Value, "a Get of a missing key sets Value to nil")
}

func TestValuesAreCopied(t *testing.T) {
	ctx := context.Background()
	c := newTestClient(t, newTestExtension(t, 4<<10, 1<<20))
	buf := []byte("value")
	require.NoError(t, c.Set(ctx, "k", buf))
	copy(buf, "XXXXX") // the caller reuses its buffer
	got, err := c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, []byte("value"), got)
	got[0] = 'Y' // the caller scribbles on what it got
	again, err := c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, []byte("value"), again)

	op := storage.GetOperation("k")
	require.NoError(t, c.Batch(ctx, op))
	op.Value[0] = 'Z'
	again, _ = c.Get(ctx, "k")
	assert.Equal(t, []byte("value"), again)

	require.NoError(t, c.Set(ctx, "empty", nil))
	empty, err := c.Get(ctx, "empty")
	require.NoError(t, err)
	assert.NotNil(t, empty, "a key set to an empty value is present")
	assert.Empty(t, empty)
}

func TestWrongOpTypeWritesNothing(t *testing.T) {
	ctx := context.Background()
	c := newTestClient(t, newTestExtension(t, 4<<10, 1<<20))
	err := c.Batch(ctx, storage.SetOperation("a", []byte("1")), &storage.Operation{Type: 7, Key: "b"})
	require.ErrorIs(t, err, errWrongOpType)
	v, _ := c.Get(ctx, "a")
	assert.Nil(t, v)
	assert.Zero(t, c.log.disk)
}

func TestClosedClient(t *testing.T) {
	ctx := context.Background()
	ext := newTestExtension(t, 4<<10, 1<<20)
	c := newTestClient(t, ext)
	require.NoError(t, c.Close(ctx))
	require.NoError(t, c.Close(ctx), "closing twice is fine")
	_, err := c.Get(ctx, "a")
	assert.ErrorIs(t, err, errClosed)
	assert.ErrorIs(t, c.Set(ctx, "a", nil), errClosed)
	assert.ErrorIs(t, c.Batch(ctx), errClosed)
}

func TestOneClientPerDirectory(t *testing.T) {
	ctx := context.Background()
	ext := newTestExtension(t, 4<<10, 1<<20)
	c := newTestClient(t, ext)
	_, err := ext.GetClient(ctx, component.KindExporter, component.MustNewID("otlp"), "logs")
	assert.ErrorContains(t, err, "already open")
	// another process (another extension over the same directory) is locked out
	other := &logStorage{cfg: ext.cfg, logger: ext.logger, telemetry: ext.telemetry, fs: osFileSystem, clients: map[string]*client{}}
	_, err = other.GetClient(ctx, component.KindExporter, component.MustNewID("otlp"), "logs")
	assert.ErrorContains(t, err, "locked by another process")
	require.NoError(t, c.Close(ctx))
	c2, err := ext.GetClient(ctx, component.KindExporter, component.MustNewID("otlp"), "logs")
	require.NoError(t, err)
	require.NoError(t, c2.Close(ctx))
}

func TestClientDirectoryNamedLikeFileStorage(t *testing.T) {
	ctx := context.Background()
	ext := newTestExtension(t, 4<<10, 1<<20)
	c, err := ext.GetClient(ctx, component.KindExporter, component.MustNewIDWithName("otlp_http", "gw/1"), "logs")
	require.NoError(t, err)
	assert.Equal(t, "exporter_otlp_http_gw~002F1_logs", c.(*client).name)
	c2, err := ext.GetClient(ctx, component.KindReceiver, component.MustNewID("filelog"), "")
	require.NoError(t, err)
	assert.Equal(t, "receiver_filelog_", c2.(*client).name)
	c3, err := ext.GetClient(ctx, component.KindExporter, component.MustNewID("otlp"), fmt.Sprintf("%0300d", 7))
	require.NoError(t, err)
	assert.Len(t, c3.(*client).name, 64, "a name too long for the file system is hashed")
}

func TestWalk(t *testing.T) {
	ctx := context.Background()
	c := newTestClient(t, newTestExtension(t, 4<<10, 1<<20))
	for _, k := range []string{"c", "a", "b"} {
		require.NoError(t, c.Set(ctx, k, []byte(k)))
	}
	var seen []string
	require.NoError(t, c.Walk(ctx, func(k string, v []byte) ([]*storage.Operation, error) {
		seen = append(seen, k+"="+string(v))
		if k == "b" {
			return []*storage.Operation{storage.DeleteOperation("a")}, storage.SkipAll
		}
		return nil, nil
	}))
	assert.Equal(t, []string{"a=a", "b=b"}, seen)
	v, _ := c.Get(ctx, "a")
	assert.Nil(t, v)
	boom := errors.New("boom")
	assert.ErrorIs(t, c.Walk(ctx, func(string, []byte) ([]*storage.Operation, error) {
		return []*storage.Operation{storage.DeleteOperation("b")}, boom
	}), boom)
	v, _ = c.Get(ctx, "b")
	assert.Equal(t, []byte("b"), v, "ops of a failed walk are not applied")
}
