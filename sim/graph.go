package sim

import (
	"slices"
)

// GraphStats describes the overlay that the live nodes' active views form.
type GraphStats struct {
	LiveNodes int
	// Components is the number of connected components of the undirected graph of active
	// links among live nodes; Connected is Components == 1. LargestComponent counts nodes.
	Components       int
	Connected        bool
	LargestComponent int
	// Isolated counts live nodes whose active view holds no live node.
	Isolated int
	// AsymmetricLinks counts ordered pairs (a, b) of live nodes with b in a's active view but
	// a not in b's. DeadLinks counts active-view entries that name a crashed node.
	AsymmetricLinks, DeadLinks int
	// ActiveViewAvg and PassiveViewAvg are the mean view sizes over live nodes.
	ActiveViewAvg, PassiveViewAvg float64
	// ClusteringCoefficient is the mean local clustering coefficient (nodes of degree < 2
	// count as 0, as in the HyParView paper's Table 1).
	ClusteringCoefficient float64
	// AvgShortestPath is the mean hop distance between reachable pairs, from the sampled BFS
	// sources; MaxShortestPath is the largest distance seen (the diameter when every node is a
	// source).
	AvgShortestPath float64
	MaxShortestPath int
}

// Graph measures the overlay. pathSources bounds how many nodes the shortest-path statistics
// start a breadth-first search from (chosen with the simulator's random source); 0 or a number
// at least the live count means every live node, which is exact.
func (s *Sim) Graph(pathSources int) GraphStats {
	g := GraphStats{LiveNodes: len(s.live)}
	if len(s.live) == 0 {
		return g
	}
	// Live nodes in index order, so the statistics do not depend on the order of s.live.
	live := slices.Clone(s.live)
	slices.Sort(live)
	dense := make([]int32, len(s.nodes)) // node index → dense index + 1 (0: not live)
	for k, i := range live {
		dense[i] = int32(k + 1)
	}
	// out[k]: live active peers of live node k (dense indexes), sorted.
	out := make([][]int32, len(live))
	var passiveSum, activeSum int
	for k, i := range live {
		n := &s.nodes[i]
		active := n.p.ActiveView()
		activeSum += len(active)
		passiveSum += len(n.p.PassiveView())
		for _, p := range active {
			j, ok := s.lookup(p)
			if !ok || dense[j] == 0 {
				g.DeadLinks++
				continue
			}
			out[k] = append(out[k], dense[j]-1)
		}
		slices.Sort(out[k])
		if len(out[k]) == 0 {
			g.Isolated++
		}
	}
	g.ActiveViewAvg = float64(activeSum) / float64(len(live))
	g.PassiveViewAvg = float64(passiveSum) / float64(len(live))
	// Undirected adjacency: the union of both directions; count one-sided links.
	adj := make([][]int32, len(live))
	for k := range out {
		for _, j := range out[k] {
			adj[k] = append(adj[k], j)
			if _, found := slices.BinarySearch(out[j], int32(k)); !found {
				g.AsymmetricLinks++
				adj[j] = append(adj[j], int32(k))
			}
		}
	}
	for k := range adj {
		slices.Sort(adj[k])
		adj[k] = slices.Compact(adj[k])
	}
	// Components.
	comp := make([]int32, len(live))
	for k := range comp {
		comp[k] = -1
	}
	var queue []int32
	for start := range adj {
		if comp[start] >= 0 {
			continue
		}
		c := int32(g.Components)
		g.Components++
		size := 0
		comp[start] = c
		queue = append(queue[:0], int32(start))
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			size++
			for _, v := range adj[u] {
				if comp[v] < 0 {
					comp[v] = c
					queue = append(queue, v)
				}
			}
		}
		g.LargestComponent = max(g.LargestComponent, size)
	}
	g.Connected = g.Components == 1
	// Clustering coefficient.
	var ccSum float64
	for k := range adj {
		deg := len(adj[k])
		if deg < 2 {
			continue
		}
		links := 0
		for x := 0; x < deg; x++ {
			for y := x + 1; y < deg; y++ {
				if _, found := slices.BinarySearch(adj[adj[k][x]], adj[k][y]); found {
					links++
				}
			}
		}
		ccSum += float64(links) / float64(deg*(deg-1)/2)
	}
	g.ClusteringCoefficient = ccSum / float64(len(live))
	// Shortest paths by BFS from sampled sources.
	sources := make([]int32, len(live))
	for k := range sources {
		sources[k] = int32(k)
	}
	if pathSources > 0 && pathSources < len(live) {
		s.rng.Shuffle(len(sources), func(a, b int) { sources[a], sources[b] = sources[b], sources[a] })
		sources = sources[:pathSources]
	}
	dist := make([]int32, len(live))
	var pathSum, pathCount int64
	for _, src := range sources {
		for k := range dist {
			dist[k] = -1
		}
		dist[src] = 0
		queue = append(queue[:0], src)
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for _, v := range adj[u] {
				if dist[v] < 0 {
					dist[v] = dist[u] + 1
					pathSum += int64(dist[v])
					pathCount++
					g.MaxShortestPath = max(g.MaxShortestPath, int(dist[v]))
					queue = append(queue, v)
				}
			}
		}
	}
	if pathCount > 0 {
		g.AvgShortestPath = float64(pathSum) / float64(pathCount)
	}
	return g
}
