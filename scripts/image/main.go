// assemble writes the mailfleet image as a docker-archive tarball (what `docker save` writes;
// `docker load`, `podman load` and `ctr images import` read it) from layer tarballs made by
// scripts/image.ts, with go-containerregistry doing the manifest, config, gzip and digests.
// Every timestamp is -epoch, so the same layers give the same digest.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var layers, env, labels list
	epoch := flag.Int64("epoch", 0, "SOURCE_DATE_EPOCH: the time of every timestamp")
	flag.Var(&layers, "layer", "name=path of an uncompressed layer tarball, in order (repeatable)")
	flag.Var(&env, "env", "KEY=value (repeatable)")
	flag.Var(&labels, "label", "KEY=value (repeatable)")
	entrypoint := flag.String("entrypoint", "[]", "JSON array")
	cmd := flag.String("cmd", "[]", "JSON array")
	user := flag.String("user", "", "uid:gid")
	workdir := flag.String("workdir", "", "working directory")
	tag := flag.String("tag", "", "repository:tag recorded in the archive")
	out := flag.String("out", "", "output docker-archive tarball")
	flag.Parse()
	if err := run(*epoch, layers, env, labels, *entrypoint, *cmd, *user, *workdir, *tag, *out); err != nil {
		fmt.Fprintln(os.Stderr, "assemble:", err)
		os.Exit(1)
	}
}

func run(epoch int64, layers, env, labels list, entrypoint, cmd, user, workdir, tag, out string) error {
	created := v1.Time{Time: time.Unix(epoch, 0).UTC()}
	var addenda []mutate.Addendum
	for _, spec := range layers {
		layerName, path, ok := strings.Cut(spec, "=")
		if !ok {
			return fmt.Errorf("-layer %q: want name=path", spec)
		}
		layer, err := tarball.LayerFromFile(path)
		if err != nil {
			return fmt.Errorf("layer %s: %w", path, err)
		}
		addenda = append(addenda, mutate.Addendum{
			Layer:   layer,
			History: v1.History{Created: created, CreatedBy: "scripts/image.ts: " + layerName},
		})
	}
	img, err := mutate.Append(empty.Image, addenda...)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS = "linux"
	cf.Architecture = "amd64"
	if err := json.Unmarshal([]byte(entrypoint), &cf.Config.Entrypoint); err != nil {
		return fmt.Errorf("-entrypoint: %w", err)
	}
	if err := json.Unmarshal([]byte(cmd), &cf.Config.Cmd); err != nil {
		return fmt.Errorf("-cmd: %w", err)
	}
	cf.Config.User = user
	cf.Config.WorkingDir = workdir
	cf.Config.Env = env
	if len(labels) > 0 {
		cf.Config.Labels = map[string]string{}
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			cf.Config.Labels[k] = v
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Println(digest)
	return nil
}
