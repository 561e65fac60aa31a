package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Containerfile instruction, continuation lines joined.
type instruction struct{ op, args string }

// stages reads a Containerfile into its stages, each a list of instructions.
func stages(t *testing.T, path string) [][]instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]instruction
	var line string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && line == "") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			line += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		line += l
		op, args, _ := strings.Cut(line, " ")
		line = ""
		in := instruction{strings.ToUpper(op), strings.TrimSpace(args)}
		if in.op == "FROM" {
			out = append(out, nil)
		}
		if len(out) == 0 {
			t.Fatalf("%s: %s before FROM", path, in.op)
		}
		out[len(out)-1] = append(out[len(out)-1], in)
	}
	return out
}

// TestContainerfile: the image is FROM scratch, holding the binary the
// build stage makes with scripts/build (static: checked on the real build),
// the CA bundle where Go looks for it, and runs as a non-root user.
func TestContainerfile(t *testing.T) {
	st := stages(t, filepath.Join("container", "Containerfile"))
	if len(st) != 2 {
		t.Fatalf("%d stages, want a build stage and the image", len(st))
	}
	build, image := st[0], st[len(st)-1]
	from := regexp.MustCompile(`^\S*golang:(\d+\.\d+)\S* AS build$`).FindStringSubmatch(build[0].args)
	if from == nil {
		t.Fatalf("build stage FROM %q, want golang:X.Y… AS build", build[0].args)
	}
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(gomod), "\ngo "+from[1]+".") && !strings.Contains(string(gomod), "\ngo "+from[1]+"\n") {
		t.Errorf("build stage on Go %s, go.mod asks for another", from[1])
	}
	var builds []string
	for _, in := range build {
		if in.op == "RUN" && strings.Contains(in.args, "go build") {
			t.Errorf("RUN %s: build with scripts/build, which makes the binary static and stamped", in.args)
		}
		if in.op == "RUN" && strings.HasPrefix(in.args, "scripts/build ") {
			builds = append(builds, strings.TrimPrefix(in.args, "scripts/build "))
		}
	}
	if len(builds) != 1 {
		t.Fatalf("build stage runs scripts/build %d times, want once", len(builds))
	}
	outDir := builds[0]
	if image[0].args != "scratch" {
		t.Fatalf("image FROM %q, want scratch", image[0].args)
	}
	copies := map[string]string{}
	var user, entrypoint string
	for _, in := range image[1:] {
		switch in.op {
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) != 3 || f[0] != "--from=build" {
				t.Fatalf("COPY %s: want COPY --from=build SRC DST", in.args)
			}
			copies[f[2]] = f[1]
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "CMD":
		default:
			t.Errorf("image: %s %s: nothing but files, a user and the command belong in it", in.op, in.args)
		}
	}
	if copies["/usr/bin/tripcap"] != outDir+"/tripcap" {
		t.Errorf("image's /usr/bin/tripcap comes from %q, not scripts/build's %s/tripcap", copies["/usr/bin/tripcap"], outDir)
	}
	// Go's crypto/x509 reads this file first on Linux.
	if copies["/etc/ssl/certs/ca-certificates.crt"] != "/etc/ssl/certs/ca-certificates.crt" {
		t.Errorf("no CA bundle at /etc/ssl/certs/ca-certificates.crt: %v", copies)
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: the image must not run as root", user)
	}
	if entrypoint != `["/usr/bin/tripcap"]` {
		t.Errorf("ENTRYPOINT %s", entrypoint)
	}
	// What the recipe copies in is what scripts/build makes: static.
	requireStatic(t, releaseBinary(t))
	script, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "build"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), "CGO_ENABLED=0 go build") {
		t.Error("scripts/build does not build with CGO_ENABLED=0")
	}
}
