/**
 * The two built-in texts of the `charlm` task, written for deltarank and free to reuse.
 * `PROSE` (English prose) trains the base model; `CODE` (a small program in a
 * Python-like style) is the fine-tuning target. Their character statistics differ:
 * capitals, commas and long words in one; indentation, brackets, "=", "_" and short
 * identifiers in the other.
 */

export const PROSE = `The lighthouse keeper kept a notebook in which he wrote down the weather twice a day, once at dawn and once at dusk, and in the long winter evenings he read back through the old pages to see whether the years were repeating themselves. They never quite did. A gale that arrived in the second week of March one year would come in the first week of April the next, and the fog that lay over the harbour for nine days one autumn would not return for a decade. Still, he liked to look for patterns, because the sea was too large to understand all at once and a pattern was a way of holding a small piece of it in the hand.

His cottage stood at the foot of the tower, built of grey stone with a slate roof that the wind had tried many times to take away. There was a kitchen with an iron stove, a bedroom with a narrow bed, and a room that he called the study although it held nothing but a table, a chair, a shelf of books and a brass barometer that had belonged to the keeper before him. Every morning he tapped the glass of the barometer with one finger and watched the needle settle, and every morning he wrote the number in the notebook beside the direction of the wind and the colour of the sky.

The village lay two miles along the coast, across a headland of heather and gorse. On Saturdays he walked there to buy bread, flour, lamp oil and tobacco, and to collect the letters that the postman left for him at the shop. The shopkeeper was a tall woman with a quick laugh who asked him every week whether he was lonely out there, and every week he told her that he was not, which was mostly true. He had the gulls, the seals that hauled themselves onto the rocks below the tower, and the ships that passed at night with their lights moving slowly along the edge of the world.

In the spring the headland turned yellow with gorse flowers and smelled faintly of coconut, and larks climbed into the sky singing as if they would never come down. In the summer the sea was calm for weeks at a time, and children from the village came to fish from the harbour wall and to ask him how the great lamp worked. He would take them up the spiral stair, one hundred and twelve steps, and show them the lens, a beehive of glass prisms taller than a man, which gathered the light of a single flame and threw it twenty miles across the water.

Autumn brought the storms. The first of them usually came at night, with a rising moan in the chimney and a rattle of rain against the windows, and by morning the sea would be white from the shore to the horizon. On those days he did not leave the tower. He trimmed the wick, polished the glass, wound the clockwork that turned the lens, and watched the waves break over the rocks with a sound like distant guns. Sometimes a ship would appear in the spray, labouring and rolling, and he would follow it with the telescope until it had rounded the point and found the shelter of the bay.

Winter was quiet and dark. The sun rose late and set early, and the lamp burned for sixteen hours out of every twenty four. He spent the evenings reading, mending his clothes, and writing long letters to his sister, who lived in a city far inland and had never seen the sea. He described the colour of the water under a winter sky, the shapes of the clouds, the way the frost drew ferns on the inside of the glass. She wrote back about trams and markets and the price of coal, and about her children, who were growing up faster than either of them could believe.

When he grew old, the lighthouse was given an electric lamp that needed no keeper, and he moved into a small house in the village with a garden that looked toward the headland. He still kept a notebook. Every morning he stepped outside, looked at the sky, felt the wind on his face, and wrote down what he saw. At night, from his window, he could see the beam of the tower sweeping across the water, steady and patient, turning as it always had, and he found that he did not mind at all that it no longer needed him.

People in the village said that he could tell the weather three days ahead, and perhaps he could. He said only that the sea had been writing in his notebook for forty years, and that if a man read anything for long enough, he began to understand a little of the language in which it was written.
`;

export const CODE = `def read_config(path):
    config = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, value = line.split("=", 1)
            config[key.strip()] = value.strip()
    return config


def parse_int(text, default=0):
    try:
        return int(text)
    except ValueError:
        return default


class Counter:
    def __init__(self):
        self.counts = {}
        self.total = 0

    def add(self, key, n=1):
        self.counts[key] = self.counts.get(key, 0) + n
        self.total += n

    def most_common(self, k=10):
        items = sorted(self.counts.items(), key=lambda kv: -kv[1])
        return items[:k]

    def frequency(self, key):
        if self.total == 0:
            return 0.0
        return self.counts.get(key, 0) / self.total


def tokenize(text):
    tokens = []
    word = []
    for ch in text:
        if ch.isalnum() or ch == "_":
            word.append(ch)
        else:
            if word:
                tokens.append("".join(word))
                word = []
            if not ch.isspace():
                tokens.append(ch)
    if word:
        tokens.append("".join(word))
    return tokens


def count_words(paths):
    counter = Counter()
    for path in paths:
        with open(path) as f:
            for token in tokenize(f.read()):
                counter.add(token.lower())
    return counter


class Matrix:
    def __init__(self, rows, cols, fill=0.0):
        self.rows = rows
        self.cols = cols
        self.data = [[fill] * cols for _ in range(rows)]

    def get(self, i, j):
        return self.data[i][j]

    def set(self, i, j, value):
        self.data[i][j] = value

    def transpose(self):
        out = Matrix(self.cols, self.rows)
        for i in range(self.rows):
            for j in range(self.cols):
                out.data[j][i] = self.data[i][j]
        return out

    def matmul(self, other):
        if self.cols != other.rows:
            raise ValueError("shape mismatch")
        out = Matrix(self.rows, other.cols)
        for i in range(self.rows):
            row = self.data[i]
            for k in range(self.cols):
                a = row[k]
                if a == 0.0:
                    continue
                other_row = other.data[k]
                out_row = out.data[i]
                for j in range(other.cols):
                    out_row[j] += a * other_row[j]
        return out

    def norm(self):
        total = 0.0
        for row in self.data:
            for x in row:
                total += x * x
        return total ** 0.5


def binary_search(items, target):
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


def merge_sorted(a, b):
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    out.extend(a[i:])
    out.extend(b[j:])
    return out


def merge_sort(items):
    if len(items) <= 1:
        return list(items)
    mid = len(items) // 2
    return merge_sorted(merge_sort(items[:mid]), merge_sort(items[mid:]))


class Queue:
    def __init__(self):
        self.items = []
        self.head = 0

    def push(self, item):
        self.items.append(item)

    def pop(self):
        if self.head >= len(self.items):
            raise IndexError("pop from empty queue")
        item = self.items[self.head]
        self.head += 1
        if self.head > 64 and self.head * 2 > len(self.items):
            self.items = self.items[self.head:]
            self.head = 0
        return item

    def __len__(self):
        return len(self.items) - self.head


def shortest_path(graph, start, goal):
    queue = Queue()
    queue.push(start)
    parent = {start: None}
    while len(queue) > 0:
        node = queue.pop()
        if node == goal:
            path = []
            while node is not None:
                path.append(node)
                node = parent[node]
            return path[::-1]
        for nxt in graph.get(node, []):
            if nxt not in parent:
                parent[nxt] = node
                queue.push(nxt)
    return None


def moving_average(values, window=3):
    out = []
    total = 0.0
    for i, x in enumerate(values):
        total += x
        if i >= window:
            total -= values[i - window]
        if i >= window - 1:
            out.append(total / window)
    return out


def main(args):
    config = read_config(args[0])
    limit = parse_int(config.get("limit", "10"), 10)
    counter = count_words(args[1:])
    for word, n in counter.most_common(limit):
        print(word, n, round(counter.frequency(word), 4))
    return 0
`;
