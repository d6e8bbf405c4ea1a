package resilienttest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The routes every Server serves, whatever its dialect. Their names key
// scripts (WithScript) and Stats.Attempts.
const (
	// RouteCreatePost creates a post: a write, stored through the
	// idempotency store. Its body must be a JSON object; the post is that
	// object with "id" and "status" added, and it is answered with 201
	// Created and a Location header.
	RouteCreatePost = "POST /v1/posts"
	// RouteListPosts lists the latest posts, newest first: at most 20, or
	// the limit query parameter (1 to 100).
	RouteListPosts = "GET /v1/posts"
	// RouteGetPost fetches one post; an unknown id gets a 404 with the
	// dialect's not-found code.
	RouteGetPost = "GET /v1/posts/{id}"
	// RouteUploadURL issues a signed media upload URL: a write, stored
	// through the idempotency store, answered with 200. Its body is
	// optional; when present it must be a JSON object.
	RouteUploadURL = "POST /v1/media/upload-url"
	// RouteUsage reports what the server stored, as
	// {"posts":2,"upload_urls":1,"requests":7}, with, under a quota, the
	// caller's "quota":{"limit":60,"remaining":59,"reset":"<RFC 3339>"}.
	// "requests" counts the requests the server read, as Stats.Requests,
	// this one included. These are the API's counts, for the life of the
	// server: Reset, which zeroes Stats, keeps them all.
	RouteUsage = "GET /v1/usage"
)

// Routes returns the names of the routes every Server serves.
func Routes() []string {
	return []string{RouteCreatePost, RouteListPosts, RouteGetPost, RouteUploadURL, RouteUsage}
}

func isRoute(name string) bool {
	switch name {
	case RouteCreatePost, RouteListPosts, RouteGetPost, RouteUploadURL, RouteUsage:
		return true
	}
	return false
}

func isWriteRoute(name string) bool { return name == RouteCreatePost || name == RouteUploadURL }

// match finds the route of a request. It returns the route's name and the
// post id of RouteGetPost; found is false for an unknown path, and allow
// lists the methods of a known path that method is not one of. A HEAD is
// matched as a GET, as net/http's ServeMux matches it, and allow lists
// HEAD with every GET.
func match(method, path string) (route, id string, found bool, allow string) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	switch {
	case path == "/v1/posts":
		switch method {
		case http.MethodGet:
			return RouteListPosts, "", true, ""
		case http.MethodPost:
			return RouteCreatePost, "", true, ""
		}
		return "", "", true, "GET, HEAD, POST"
	case strings.HasPrefix(path, "/v1/posts/") && len(path) > len("/v1/posts/") && !strings.Contains(path[len("/v1/posts/"):], "/"):
		if method == http.MethodGet {
			return RouteGetPost, path[len("/v1/posts/"):], true, ""
		}
		return "", "", true, "GET, HEAD"
	case path == "/v1/media/upload-url":
		if method == http.MethodPost {
			return RouteUploadURL, "", true, ""
		}
		return "", "", true, "POST"
	case path == "/v1/usage":
		if method == http.MethodGet {
			return RouteUsage, "", true, ""
		}
		return "", "", true, "GET, HEAD"
	}
	return "", "", false, ""
}

// api is the state of the emulated API: what the writes created. The
// Server's mutex guards it.
type api struct {
	posts []post         // in creation order
	byID  map[string]int // index in posts
	media int            // upload URLs issued
	// requests counts the requests read, for RouteUsage (Stats.Requests
	// but for Reset).
	requests int
}

type post struct {
	id   string
	data json.RawMessage // the post as answered
}

// createPost stores a post made of the JSON object obj and returns it.
func (a *api) createPost(d Dialect, obj map[string]json.RawMessage) post {
	n := len(a.posts) + 1
	prefix := "post_"
	if d == Postato {
		prefix = "pst_"
	}
	id := prefix + strconv.Itoa(n)
	if obj == nil {
		obj = make(map[string]json.RawMessage, 2)
	}
	idJSON, _ := json.Marshal(id)
	obj["id"] = idJSON
	obj["status"] = json.RawMessage(`"scheduled"`)
	data, _ := json.Marshal(obj) // raw values from a decoded object: cannot fail
	p := post{id: id, data: data}
	if a.byID == nil {
		a.byID = make(map[string]int)
	}
	a.byID[id] = len(a.posts)
	a.posts = append(a.posts, p)
	return p
}

// uploadURL issues a media upload URL.
func (a *api) uploadURL(d Dialect) json.RawMessage {
	a.media++
	id := "med_" + strconv.Itoa(a.media)
	v := struct {
		MediaID   string `json:"media_id"`
		UploadURL string `json:"upload_url"`
		ExpiresIn int    `json:"expires_in"`
	}{id, "https://uploads." + d.String() + ".test/" + id, 900}
	b, _ := json.Marshal(v)
	return b
}

// list returns the latest limit posts, newest first, in the dialect's
// shape (inside the success envelope).
func (a *api) list(d Dialect, limit int) json.RawMessage {
	var b strings.Builder
	if d == Altyaa {
		b.WriteString(`[`)
	} else {
		b.WriteString(`{"posts":[`)
	}
	for i, n := len(a.posts)-1, 0; i >= 0 && n < limit; i, n = i-1, n+1 {
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(a.posts[i].data)
	}
	if d == Altyaa {
		b.WriteString(`]`)
	} else {
		b.WriteString(`]}`)
	}
	return json.RawMessage(b.String())
}

// usage returns the answer of RouteUsage: the posts and upload URLs
// stored, the requests read, and with a quota (q not nil) the limit,
// remaining requests and reset time of the caller's class.
func (a *api) usage(q *quotaState, remaining int, reset time.Time) json.RawMessage {
	type quota struct {
		Limit     int    `json:"limit"`
		Remaining int    `json:"remaining"`
		Reset     string `json:"reset"`
	}
	v := struct {
		Posts      int    `json:"posts"`
		UploadURLs int    `json:"upload_urls"`
		Requests   int    `json:"requests"`
		Quota      *quota `json:"quota,omitempty"`
	}{Posts: len(a.posts), UploadURLs: a.media, Requests: a.requests}
	if q != nil {
		v.Quota = &quota{q.limit(classRead), remaining, time.Unix(ceilUnix(reset), 0).UTC().Format(time.RFC3339)}
	}
	b, _ := json.Marshal(v)
	return b
}

// get returns the post with id.
func (a *api) get(id string) (json.RawMessage, bool) {
	i, ok := a.byID[id]
	if !ok {
		return nil, false
	}
	return a.posts[i].data, true
}

// listLimit reads the limit query parameter: 20 by default, clamped to
// [1, 100]. ok is false when it is not a number.
func listLimit(r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 20, true
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	return min(max(n, 1), 100), true
}
